"""2D mixtures of Gaussians (Metz et al. 2017; Srivastava et al. 2017), generated from the seed."""

from __future__ import annotations

import math

import torch

from lit_gen.data.base import DataInfo, GenerativeDataModule
from lit_gen.registry import Registry


class ToyDataModule(GenerativeDataModule):
    """Points drawn uniformly over `modes()`, each with isotropic std `mode_std`; y = mode index."""

    kind = "toy"
    default_radius = 1.0
    default_std = 0.01

    @property
    def radius(self) -> float:
        return self.default_radius if self.cfg.radius is None else float(self.cfg.radius)

    @property
    def mode_std(self) -> float:
        return self.default_std if self.cfg.std is None else float(self.cfg.std)

    def modes(self) -> torch.Tensor:
        """(K, 2) mode centres."""
        raise NotImplementedError

    def _draw(self, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        centres = self.modes()
        y = torch.randint(len(centres), (n,), generator=gen)
        x = centres[y] + self.mode_std * torch.randn(n, 2, generator=gen)
        return x.float(), y

    def load(self):
        gen = torch.Generator().manual_seed(self.seed)
        x, y = self._draw(self.cfg.n_samples, gen)
        x_test, y_test = self._draw(max(self.cfg.n_samples // 5, 1), gen)
        return x, y, x_test, y_test

    def info(self) -> DataInfo:
        return DataInfo(self.cfg.name, "toy", (2,), len(self.modes()))


def register(datasets: Registry) -> None:
    @datasets.register("ring2d")
    class Ring2D(ToyDataModule):
        """8 Gaussians at angles 2*pi*k/8 on a circle of radius 1, std 0.01."""

        default_radius, default_std = 1.0, 0.01

        def modes(self) -> torch.Tensor:
            angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
            return (self.radius * torch.stack([angles.cos(), angles.sin()], 1)).float()

    @datasets.register("grid2d")
    class Grid2D(ToyDataModule):
        """25 Gaussians at {-4,-2,0,2,4}^2, std 0.05; `radius` is the outermost coordinate."""

        default_radius, default_std = 4.0, 0.05

        def modes(self) -> torch.Tensor:
            ticks = torch.linspace(-self.radius, self.radius, 5, dtype=torch.float64)
            gx, gy = torch.meshgrid(ticks, ticks, indexing="ij")
            return torch.stack([gx.reshape(-1), gy.reshape(-1)], 1).float()
