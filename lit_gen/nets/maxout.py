"""Maxout layers and the maxout MLP discriminator of ALI / PacGAN's 2D experiments."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lit_gen.errors import ConfigError
from lit_gen.nets.layers import append_condition, flat_size


class Maxout(nn.Module):
    """Goodfellow et al. 2013: the max over `pieces` affine maps of the input.

    Args:
        in_features: size of the input (B, in_features).
        out_features: units; the output is (B, out_features).
        pieces: affine maps per unit.
    """

    def __init__(self, in_features: int, out_features: int, pieces: int):
        super().__init__()
        if pieces < 1:
            raise ConfigError(f"maxout pieces must be >= 1, got {pieces}")
        self.out_features, self.pieces = out_features, pieces
        # unit u's pieces are rows u*pieces .. u*pieces + pieces - 1 of the linear map
        self.linear = nn.Linear(in_features, out_features * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x).view(len(x), self.out_features, self.pieces).amax(-1)


class MaxoutDiscriminator(nn.Module):
    """x (B, *in_shape) -> (B, out_dim): maxout hidden layers, then a linear head.

    PacGAN (Lin et al. 2018) and ALI's 2D experiments use 3 x 200 units of 5 pieces with
    N(0, 0.02) weights and zero biases (`init_std=0.02`).

    Args:
        in_shape: shape of one input (a packed D sees `pack` samples: the model passes the
            packed shape).
        out_dim: number of outputs.
        hidden: units of each maxout layer.
        pieces: affine pieces per unit.
        init_std: N(0, init_std) weights and zero biases; None keeps torch's default init.
        dropout: dropout after each hidden layer.
        cond_dim: size of a condition vector concatenated to the flattened input.
    """

    def __init__(self, in_shape: Sequence[int], out_dim: int = 1,
                 hidden: Sequence[int] = (200, 200, 200), pieces: int = 5,
                 init_std: float | None = 0.02, dropout: float = 0.0, cond_dim: int = 0):
        super().__init__()
        layers: list[nn.Module] = []
        width = flat_size(in_shape) + cond_dim
        for h in hidden:
            layers.append(Maxout(width, h, pieces))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        self.body = nn.Sequential(*layers)
        self.feature_dim = width
        self.head = nn.Linear(width, out_dim)
        if init_std is not None:
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0.0, init_std)
                    nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(append_condition(x.flatten(1), cond))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x, cond))
