"""Random images of any shape: for speed benchmarks and profiling a run without data."""

from __future__ import annotations

import torch

from lit_gen.data.base import DataInfo, GenerativeDataModule
from lit_gen.registry import Registry


def register(datasets: Registry) -> None:
    @datasets.register("synthetic")
    class Synthetic(GenerativeDataModule):
        """`data.n_samples` images uniform in [-1, 1] (plus n_samples / 5 test images) of
        shape (data.channels or 1, data.image_size or 28, same), 10 random labels, drawn
        from the seed. They carry no structure: use them to time a pipeline, not to learn.
        """

        def load(self):
            gen = torch.Generator().manual_seed(self.seed)
            c, s, _ = self.info().shape
            n, n_test = self.cfg.n_samples, max(self.cfg.n_samples // 5, 1)
            x = torch.rand(n + n_test, c, s, s, generator=gen).mul_(2).sub_(1)
            y = torch.randint(10, (n + n_test,), generator=gen)
            return x[:n], y[:n], x[n:], y[n:]

        def info(self) -> DataInfo:
            s = self.cfg.image_size or 28
            return DataInfo("synthetic", "image", (self.cfg.channels or 1, s, s), 10)
