"""MNIST, Fashion-MNIST and CIFAR-10 through torchvision, downloaded into `data.root`."""

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
        """Fashion-MNIST (Xiao et al. 2017): 60k/10k grey 28x28 clothing images."""

        tv_class, native_shape = "FashionMNIST", (1, 28, 28)

        def expected_files(self) -> str:
            return f"{', '.join(_IDX_FILES)} in {self.cfg.root}/FashionMNIST/raw/"

    @datasets.register("cifar10")
    class CIFAR10(TorchvisionDataModule):
        """CIFAR-10 (Krizhevsky 2009): 50k/10k colour 32x32 images, 10 classes."""

        tv_class, native_shape = "CIFAR10", (3, 32, 32)

        def expected_files(self) -> str:
            return (f"cifar-10-python.tar.gz (or its extracted cifar-10-batches-py/) "
                    f"in {self.cfg.root}/")
