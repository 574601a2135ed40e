"""Any folder of images, optionally one subfolder per class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lit_gen.data.base import DataInfo, GenerativeDataModule, to_unit_range
from lit_gen.errors import DataError
from lit_gen.registry import Registry

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS)


def register(datasets: Registry) -> None:
    @datasets.register("image_folder")
    class ImageFolder(GenerativeDataModule):
        """Images under `data.root`, resized (shorter side) and centre-cropped to
        `data.image_size`, `data.channels` 1 or 3 (default 3). With class subfolders the
        labels are the sorted subfolder names; a flat folder has no labels (num_classes 0).
        The last 10% (by sorted name, per class) are the test split.
        """

        def _root(self) -> Path:
            root = Path(self.cfg.root)
            if not root.is_dir():
                raise DataError(f"image folder '{root}' does not exist; set data.root to a "
                                "folder of images (or of class subfolders of images)")
            return root

        def _classes(self) -> list[Path]:
            return sorted(p for p in self._root().iterdir() if p.is_dir() and _images_in(p))

        def _read(self, path: Path) -> np.ndarray:
            from PIL import Image, UnidentifiedImageError

            size, mode = self.cfg.image_size, "L" if self.cfg.channels == 1 else "RGB"
            try:
                with Image.open(path) as im:
                    im = im.convert(mode)
                    w, h = im.size
                    scale = size / min(w, h)
                    im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))),
                                   Image.Resampling.BICUBIC)
                    w, h = im.size
                    left, top = (w - size) // 2, (h - size) // 2
                    im = im.crop((left, top, left + size, top + size))
                    arr = np.asarray(im, dtype=np.uint8)
            except (UnidentifiedImageError, OSError, ValueError) as err:
                raise DataError(f"cannot read image '{path}' ({type(err).__name__}); "
                                "remove or replace the file") from None
            return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)

        def load(self):
            if self.cfg.image_size is None:
                raise DataError("data.image_size must be set for image_folder (e.g. 64)")
            classes = self._classes()
            groups = [(i, _images_in(c)) for i, c in enumerate(classes)] or [
                (0, _images_in(self._root()))]
            train, test = [], []
            for label, files in groups:
                n_test = len(files) // 10
                train += [(f, label) for f in files[: len(files) - n_test]]
                test += [(f, label) for f in files[len(files) - n_test:]]
            if not train:
                raise DataError(f"no images ({', '.join(sorted(EXTENSIONS))}) found in "
                                f"'{self.cfg.root}'")

            def stack(items):
                if not items:
                    return None, None
                x = torch.from_numpy(np.stack([self._read(f) for f, _ in items]))
                return to_unit_range(x), torch.tensor([lab for _, lab in items])

            x, y = stack(train)
            x_test, y_test = stack(test)
            return x, y, x_test, y_test

        def _postprocess(self, x):
            return x.contiguous() if not self.cfg.binarize else super()._postprocess(x)

        def info(self) -> DataInfo:
            if self.cfg.image_size is None:
                raise DataError("data.image_size must be set for image_folder (e.g. 64)")
            c = self.cfg.channels or 3
            return DataInfo("image_folder", "image", (c, self.cfg.image_size,
                                                      self.cfg.image_size), len(self._classes()))
