"""Fully connected generator and discriminator (Goodfellow et al. 2014), for toys and flat images."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lit_gen.nets.layers import (
    ACTIVATIONS,
    append_condition,
    check_norm,
    flat_size,
    maybe_spectral,
    norm_1d,
)


class MLPGenerator(nn.Module):
    """z (B, latent_dim [+ cond_dim]) -> x (B, *out_shape).

    Args:
        latent_dim: size of z.
        out_shape: shape of one output, e.g. (2,) or (1, 28, 28).
        hidden: widths of the hidden layers.
        norm: none | batch | layer | spectral, after each hidden layer.
        activation: hidden activation name.
        out_activation: tanh for images in [-1, 1], none for toy sets.
        cond_dim: size of a condition vector concatenated to z (conditional models).
        bias: biases in the hidden layers (the output layer always has one); PacGAN's ALI
            generator has none (batch norm follows).
        init_std: N(0, init_std) weights and zero biases (PacGAN / ALI: 0.02); None keeps
            torch's default init.
    """

    def __init__(self, latent_dim: int, out_shape: Sequence[int], hidden: Sequence[int] = (256, 256),
                 norm: str = "batch", activation: str = "relu", out_activation: str = "tanh",
                 cond_dim: int = 0, bias: bool = True, init_std: float | None = None):
        super().__init__()
        check_norm(norm, "generator.norm")
        self.out_shape = tuple(out_shape)
        layers: list[nn.Module] = []
        width = latent_dim + cond_dim
        for h in hidden:
            layers += [maybe_spectral(nn.Linear(width, h, bias=bias), norm), norm_1d(norm, h) if norm != "spectral"
                       else nn.Identity(), ACTIVATIONS.get(activation, "generator.activation")()]
            width = h
        layers += [nn.Linear(width, flat_size(self.out_shape)),
                   ACTIVATIONS.get(out_activation, "generator.out_activation")()]
        self.net = nn.Sequential(*layers)
        if init_std is not None:
            for m in self.net:
                if isinstance(m, nn.Linear):
                    nn.init.normal_(m.weight, 0.0, init_std)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)

    def forward(self, z: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(append_condition(z, cond)).view(len(z), *self.out_shape)


class MLPDiscriminator(nn.Module):
    """x (B, *in_shape) -> (B, out_dim) scores; `features(x)` gives the last hidden layer.

    Args:
        in_shape: shape of one input.
        out_dim: number of outputs (1 for a critic, 2*latent for an encoder, ...).
        hidden: widths of the hidden layers.
        norm: none | batch | layer | spectral.
        activation: hidden activation name.
        dropout: dropout after each hidden layer.
        cond_dim: size of a condition vector concatenated to the flattened input.
    """

    def __init__(self, in_shape: Sequence[int], out_dim: int = 1, hidden: Sequence[int] = (256, 256),
                 norm: str = "none", activation: str = "leaky_relu", dropout: float = 0.0,
                 cond_dim: int = 0):
        super().__init__()
        check_norm(norm, "discriminator.norm")
        layers: list[nn.Module] = []
        width = flat_size(in_shape) + cond_dim
        for h in hidden:
            layers += [maybe_spectral(nn.Linear(width, h), norm),
                       norm_1d(norm, h) if norm != "spectral" else nn.Identity(),
                       ACTIVATIONS.get(activation, "discriminator.activation")()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        self.body = nn.Sequential(*layers)
        self.feature_dim = width
        self.head = maybe_spectral(nn.Linear(width, out_dim), norm)

    def features(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(append_condition(x.flatten(1), cond))

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x, cond))
