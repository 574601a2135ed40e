"""MNIST, Fashion-MNIST and CIFAR-10 through torchvision, downloaded into `data.root`;
Fashion-MNIST from Debian's `dataset-fashion-mnist` files when they are installed; and
`mnist10k`, the 10,000 MNIST test images alone as a small labelled set of its own."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import torch

from lit_gen.data.base import DataInfo, GenerativeDataModule, to_unit_range
from lit_gen.errors import DataError
from lit_gen.registry import Registry

_IDX_FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
              "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
# where `apt-get install dataset-fashion-mnist` puts the four original idx files
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
_IDX_DIMS = {0x0801: 1, 0x0803: 3}  # idx magic (unsigned bytes) -> number of dimensions


def read_idx(path: Path) -> np.ndarray:
    """An idx file (gzipped or not) of unsigned bytes as an array: labels (N,), images
    (N, H, W). A truncated or foreign file is a DataError naming it."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise DataError(f"cannot read {path} ({type(err).__name__}): the file is corrupt; "
                        "reinstall or download it again") from None
    magic = int.from_bytes(raw[:4], "big") if len(raw) >= 4 else -1
    ndim = _IDX_DIMS.get(magic)
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim or 0)]
    if ndim is None or len(raw) != 4 + 4 * ndim + int(np.prod(shape)):
        raise DataError(f"{path} is not an idx file of unsigned bytes (bad header or size): "
                        "reinstall or download it again")
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def idx_pair(images: Path, labels: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(x (N, 1, H, W) in [-1, 1], y (N,)) from an idx image file and its label file."""
    x = torch.from_numpy(read_idx(images).copy()).unsqueeze(1)
    y = torch.from_numpy(read_idx(labels).astype(np.int64))
    if len(x) != len(y):
        raise DataError(f"{images} holds {len(x)} images but {labels} {len(y)} labels")
    return to_unit_range(x), y


class TorchvisionDataModule(GenerativeDataModule):
    """Base for the torchvision sets; subclasses name the class, shape and expected files."""

    tv_class = ""
    native_shape: tuple[int, int, int] = (1, 28, 28)

    def expected_files(self) -> str:
        raise NotImplementedError

    def _unpack_raw(self) -> None:
        """Extract raw/*.gz next to themselves, so files placed by hand load offline
        (torchvision only reads the extracted files when download=False)."""
        raw = Path(self.cfg.root) / self.tv_class / "raw"
        for gz in raw.glob("*.gz") if raw.is_dir() else []:
            target = gz.with_suffix("")
            if target.exists():
                continue
            try:
                with gzip.open(gz, "rb") as src, open(f"{target}.part", "wb") as dst:
                    shutil.copyfileobj(src, dst)
            except (OSError, EOFError) as err:
                Path(f"{target}.part").unlink(missing_ok=True)
                raise DataError(f"corrupt archive {gz} ({type(err).__name__}): delete it and "
                                "download it again") from None
            os.replace(f"{target}.part", target)

    def _open(self, train: bool):
        import torchvision.datasets as tvd

        cls = getattr(tvd, self.tv_class)
        if self.tv_class != "CIFAR10":
            self._unpack_raw()
        try:
            return cls(self.cfg.root, train=train, download=self.cfg.download)
        except (RuntimeError, OSError, EOFError, ValueError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            how = ("the download failed (no network?)" if self.cfg.download
                   else "data.download=false")
            raise DataError(
                f"{self.tv_class} is not readable under '{self.cfg.root}' and {how}: {reason}\n"
                f"Fix: put {self.expected_files()}, or run with network and data.download=true."
            ) from None

    @staticmethod
    def _arrays(ds) -> tuple[torch.Tensor, torch.Tensor]:
        data = ds.data
        x = torch.as_tensor(np.asarray(data))
        if x.ndim == 3:  # (N, H, W) grey
            x = x.unsqueeze(1)
        else:  # (N, H, W, C)
            x = x.permute(0, 3, 1, 2)
        y = torch.as_tensor(np.asarray(ds.targets), dtype=torch.long)
        return to_unit_range(x.contiguous()), y

    def load(self):
        x, y = self._arrays(self._open(train=True))
        x_test, y_test = self._arrays(self._open(train=False))
        return x, y, x_test, y_test

    def info(self) -> DataInfo:
        c, h, _ = self.native_shape
        s = self.cfg.image_size or h
        return DataInfo(self.cfg.name, "image", (c, s, s), 10)


def register(datasets: Registry) -> None:
    @datasets.register("mnist")
    class MNIST(TorchvisionDataModule):
        """MNIST (LeCun et al. 1998): 60k/10k grey 28x28 digits."""

        tv_class, native_shape = "MNIST", (1, 28, 28)

        def expected_files(self) -> str:
            return f"{', '.join(_IDX_FILES)} in {self.cfg.root}/MNIST/raw/"

    @datasets.register("fashion_mnist")
    class FashionMNIST(TorchvisionDataModule):
        """Fashion-MNIST (Xiao et al. 2017): 60k/10k grey 28x28 clothing images.

        Read from Debian's files (`apt-get install dataset-fashion-mnist`, in
        `DEBIAN_FASHION_MNIST`) when all four are installed, offline; else through
        torchvision from `data.root` (downloaded when `data.download=true`).
        """

        tv_class, native_shape = "FashionMNIST", (1, 28, 28)
        system_dir = DEBIAN_FASHION_MNIST

        def expected_files(self) -> str:
            return (f"{', '.join(_IDX_FILES)} in {self.cfg.root}/FashionMNIST/raw/ (or "
                    f"`apt-get install dataset-fashion-mnist`, which puts them in "
                    f"{self.system_dir}/)")

        @property
        def source(self) -> str:
            """Where the images come from: the Debian directory or torchvision's root."""
            d = Path(self.system_dir)
            return str(d) if all((d / f).is_file() for f in _IDX_FILES) else "torchvision"

        def load(self):
            if self.source == "torchvision":
                return super().load()
            d = Path(self.system_dir)
            x, y = idx_pair(d / _IDX_FILES[0], d / _IDX_FILES[1])
            x_test, y_test = idx_pair(d / _IDX_FILES[2], d / _IDX_FILES[3])
            return x, y, x_test, y_test

    @datasets.register("mnist10k")
    class MNIST10k(GenerativeDataModule):
        """The 10,000 MNIST test images alone (where MNIST's training set is not available,
        e.g. the team's ../shared/data/mnist), as a set of its own: a fixed split into 8,000
        training and 2,000 test images (`test_fraction` of a numpy RandomState(0)
        permutation, the same for every run seed). `data.root` holds t10k-images-idx3-ubyte.gz and
        t10k-labels-idx1-ubyte.gz (directly or under MNIST/raw/)."""

        native_shape = (1, 28, 28)
        test_fraction = 0.2

        def _files(self) -> tuple[Path, Path]:
            root = Path(self.cfg.root)
            for d in (root, root / "MNIST" / "raw"):
                names = [d / f for f in _IDX_FILES[2:]]
                if all(p.is_file() for p in names):
                    return names[0], names[1]
            raise DataError(f"mnist10k: {', '.join(_IDX_FILES[2:])} not found in '{root}' or "
                            f"'{root}/MNIST/raw/'\nFix: set data.root to the folder holding "
                            "the MNIST test set (e.g. ../shared/data/mnist).")

        def load(self):
            x, y = idx_pair(*self._files())
            perm = torch.from_numpy(np.random.RandomState(0).permutation(len(x)))
            n_test = int(round(len(x) * self.test_fraction))
            test, train = perm[:n_test].sort().values, perm[n_test:].sort().values
            return x[train], y[train], x[test], y[test]

        def info(self) -> DataInfo:
            s = self.cfg.image_size or 28
            return DataInfo("mnist10k", "image", (1, s, s), 10)

    @datasets.register("cifar10")
    class CIFAR10(TorchvisionDataModule):
        """CIFAR-10 (Krizhevsky 2009): 50k/10k colour 32x32 images, 10 classes."""

        tv_class, native_shape = "CIFAR10", (3, 32, 32)

        def expected_files(self) -> str:
            return (f"cifar-10-python.tar.gz (or its extracted cifar-10-batches-py/) "
                    f"in {self.cfg.root}/")
