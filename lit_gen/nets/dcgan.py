"""DCGAN-style conv nets (Radford et al. 2015) for 8 to 64 px images with 1 or 3 channels."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lit_gen.errors import ConfigError
from lit_gen.nets.layers import (
    ACTIVATIONS,
    append_condition,
    check_norm,
    dcgan_init,
    maybe_spectral,
    n_resolution_levels,
    norm_1d,
    norm_2d,
)


def _levels(shape: Sequence[int], key: str) -> tuple[int, int]:
    c, h, w = shape
    if h != w or not 8 <= h <= 128:
        raise ConfigError(f"{key}: DCGAN nets need square images of 8 to 128 px, got {h}x{w}; "
                          "set data.image_size")
    levels, base = n_resolution_levels(h)
    if levels == 0:
        raise ConfigError(f"{key}: image size {h} cannot be halved; use e.g. 8, 16, 28, 32 or 64")
    return levels, base


class DCGANGenerator(nn.Module):
    """z (B, latent_dim [+ cond_dim]) -> image (B, C, H, W) in [-1, 1].

    A linear layer makes a (base_channels * 2**(L-1), s0, s0) map, then L stride-2 transposed
    convolutions double the side up to H (s0 = H / 2**L, e.g. 7 for 28 px, 4 for 32 px).

    Args:
        latent_dim: size of z.
        out_shape: (C, H, W).
        base_channels: channels at the last (largest) level; doubled per level going down.
        max_channels: cap on the channels of any level.
        norm: batch | layer | instance | none (after each block but the output).
        out_activation: tanh for images in [-1, 1].
        cond_dim: size of a condition vector concatenated to z.
    """

    def __init__(self, latent_dim: int, out_shape: Sequence[int], base_channels: int = 64,
                 max_channels: int = 512, norm: str = "batch", activation: str = "relu",
                 out_activation: str = "tanh", cond_dim: int = 0, init: str = "dcgan"):
        super().__init__()
        check_norm(norm, "generator.norm")
        self.out_shape = tuple(out_shape)
        levels, s0 = _levels(self.out_shape, "generator")
        chans = [min(base_channels * 2 ** (levels - 1 - i), max_channels) for i in range(levels)]
        act = ACTIVATIONS.get(activation, "generator.activation")
        self.s0, self.c0 = s0, chans[0]
        self.project = nn.Sequential(
            maybe_spectral(nn.Linear(latent_dim + cond_dim, chans[0] * s0 * s0), norm),
            norm_1d(norm if norm == "batch" else "none", chans[0] * s0 * s0), act())
        blocks: list[nn.Module] = []
        for c_in, c_out in zip(chans, chans[1:] + [chans[-1]]):
            blocks += [maybe_spectral(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=norm != "batch"), norm),
                       norm_2d(norm, c_out) if norm != "spectral" else nn.Identity(), act()]
        blocks += [nn.Conv2d(chans[-1], self.out_shape[0], 3, 1, 1),
                   ACTIVATIONS.get(out_activation, "generator.out_activation")()]
        self.blocks = nn.Sequential(*blocks)
        if init == "dcgan":
            dcgan_init(self)
        elif init != "default":
            raise ConfigError(f"generator.init: unknown init '{init}'. Valid: dcgan, default")

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.project(append_condition(z, cond)).view(len(z), self.c0, self.s0, self.s0)
        return self.blocks(h)


class DCGANDiscriminator(nn.Module):
    """image (B, C, H, W) -> (B, out_dim); `features(x)` is the flattened last conv map.

    L stride-2 convolutions (4x4) halve the side down to s0; the first has no normalisation.

    Args:
        in_shape: (C, H, W).
        out_dim: number of outputs.
        base_channels: channels of the first conv; doubled per level.
        max_channels: cap on the channels of any level.
        norm: batch | layer | instance | spectral | none. Use layer/none for gradient
            penalties (WGAN-GP), spectral for SNGAN.
        cond_dim: size of a condition vector appended as constant input maps.
    """

    def __init__(self, in_shape: Sequence[int], out_dim: int = 1, base_channels: int = 64,
                 max_channels: int = 512, norm: str = "batch", activation: str = "leaky_relu",
                 cond_dim: int = 0, dropout: float = 0.0, init: str = "dcgan"):
        super().__init__()
        check_norm(norm, "discriminator.norm")
        levels, s0 = _levels(tuple(in_shape), "discriminator")
        act = ACTIVATIONS.get(activation, "discriminator.activation")
        chans = [min(base_channels * 2**i, max_channels) for i in range(levels)]
        layers: list[nn.Module] = []
        c_in = in_shape[0] + cond_dim
        for i, c_out in enumerate(chans):
            layers += [maybe_spectral(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=i == 0 or norm != "batch"), norm),
                       norm_2d(norm, c_out) if i > 0 and norm != "spectral" else nn.Identity(),
                       act()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            c_in = c_out
        self.body = nn.Sequential(*layers)
        self.feature_dim = chans[-1] * s0 * s0
        self.head = maybe_spectral(nn.Linear(self.feature_dim, out_dim), norm)
        if init == "dcgan":
            dcgan_init(self)
        elif init != "default":
            raise ConfigError(f"discriminator.init: unknown init '{init}'. Valid: dcgan, default")

    def features(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(append_condition(x, cond)).flatten(1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x, cond))
