"""Any folder of images, optionally one subfolder per class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lit_gen.data.base import DataInfo, GenerativeDataModule, to_unit_range
from lit_gen.errors import DataError
from lit_gen.registry import Registry

EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


#: single-channel PIL modes with more than 8 bits, and the value that means white
HIGH_DEPTH_MODES = {"I;16": 65535.0, "I;16L": 65535.0, "I;16B": 65535.0, "I;16N": 65535.0,
                    "I": 65535.0, "F": 1.0}


def _fit(im, size: int, resample):
    """Resize the shorter side to `size` and centre-crop to size x size."""
    w, h = im.size
    scale = size / min(w, h)
    im = im.resize((max(size, round(w * scale)), max(size, round(h * scale))), resample)
    w, h = im.size
    left, top = (w - size) // 2, (h - size) // 2
    return im.crop((left, top, left + size, top + size))


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
            """(C, H, W): uint8 for 8-bit images, float32 on the same 0..255 scale for
            images with more bits (16-bit PNG/TIFF), each read with its real range."""
            from PIL import Image, UnidentifiedImageError

            size, mode = self.cfg.image_size, "L" if self.cfg.channels == 1 else "RGB"
            try:
                with Image.open(path) as im:
                    if im.mode in HIGH_DEPTH_MODES:
                        return self._read_high_depth(im, path)
                    # 1, P, LA, RGBA, CMYK, ...: PIL maps them to 8-bit L / RGB correctly
                    arr = np.asarray(_fit(im.convert(mode), size, Image.Resampling.BICUBIC),
                                     dtype=np.uint8)
            except (UnidentifiedImageError, OSError, ValueError) as err:
                raise DataError(f"cannot read image '{path}' ({type(err).__name__}); "
                                "remove or replace the file") from None
            return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)

        def _read_high_depth(self, im, path: Path) -> np.ndarray:
            """A single-channel 16-bit / 32-bit / float image, scaled by its full range
            (PIL's convert("L") would clip everything above 255 to white)."""
            from PIL import Image

            full = HIGH_DEPTH_MODES[im.mode]
            a = np.asarray(im).astype(np.float64)
            if im.mode == "I" and a.max(initial=0) > 65535:
                full = 2.0**31 - 1  # a genuine 32-bit image, not a 16-bit PNG opened as I
            if a.min(initial=0) < 0 or a.max(initial=0) > full:
                raise DataError(f"image '{path}' (mode {im.mode}) holds values outside "
                                f"[0, {full:g}]; convert it to 8 or 16 bits")
            unit = Image.fromarray((a / full).astype(np.float32), mode="F")
            grey = np.asarray(_fit(unit, self.cfg.image_size, Image.Resampling.BICUBIC))
            grey = np.clip(grey, 0.0, 1.0) * 255.0
            c = 1 if self.cfg.channels == 1 else 3
            return np.repeat(grey[None].astype(np.float32), c, axis=0)

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
                # uint8, or float32 on the 0..255 scale when a high-depth image is among them
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
