"""scikit-learn's bundled 8x8 handwritten digits: real images that need no network."""

from __future__ import annotations

import numpy as np
import torch

from lit_gen.data.base import DataInfo, GenerativeDataModule
from lit_gen.registry import Registry

N_TEST = 297  # the last 297 of the 1,797 images are the fixed test split


def register(datasets: Registry) -> None:
    @datasets.register("digits")
    class Digits(GenerativeDataModule):
        """1,797 grey 8x8 digits (values 0..16) scaled to [-1, 1], labels 0-9.

        Train/val come from the first 1,500 images; the last 297 are the test split.
        `data.image_size` resizes them (e.g. 16 or 32 for conv nets).
        """

        def load(self):
            from sklearn.datasets import load_digits

            bunch = load_digits()
            x = torch.from_numpy(bunch.images.astype(np.float32) / 8.0 - 1.0).unsqueeze(1)
            y = torch.from_numpy(bunch.target.astype(np.int64))
            return x[:-N_TEST], y[:-N_TEST], x[-N_TEST:], y[-N_TEST:]

        def info(self) -> DataInfo:
            s = self.cfg.image_size or 8
            return DataInfo("digits", "image", (1, s, s), 10)
