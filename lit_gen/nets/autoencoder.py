"""Autoencoders used as discriminators (EBGAN, BEGAN), built from the encoder/decoder nets:
an encoder is a discriminator net with `out_dim = code_dim`, a decoder a generator net with
`latent_dim = code_dim`. Both are called as `cls(in_shape, code_dim=..., ...)`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from lit_gen.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from lit_gen.nets.mlp import MLPDiscriminator, MLPGenerator


class AEOutput(NamedTuple):
    recon: torch.Tensor  # (B, *in_shape)
    code: torch.Tensor  # (B, code_dim)


class Autoencoder(nn.Module):
    """x (B, *in_shape) -> AEOutput(recon (B, *in_shape), code (B, code_dim))."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, code_dim: int):
        super().__init__()
        self.encoder, self.decoder, self.code_dim = encoder, decoder, code_dim

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> AEOutput:
        code = self.encoder(x)
        return AEOutput(self.decoder(code), code)


class MLPAutoencoder(Autoencoder):
    """Fully connected autoencoder (EBGAN's MNIST discriminator).

    Args:
        in_shape: shape of one input, e.g. (1, 28, 28).
        code_dim: size of the bottleneck code.
        hidden: encoder hidden widths; the decoder uses them reversed.
        norm: none | batch | layer | spectral, for both halves.
        activation: hidden activation name.
        out_activation: decoder output (none lets reconstructions leave [-1, 1]).
    """

    def __init__(self, in_shape: Sequence[int], code_dim: int = 32,
                 hidden: Sequence[int] = (256,), norm: str = "none",
                 activation: str = "leaky_relu", out_activation: str = "none"):
        encoder = MLPDiscriminator(in_shape, out_dim=code_dim, hidden=hidden, norm=norm,
                                   activation=activation)
        decoder = MLPGenerator(code_dim, in_shape, hidden=tuple(reversed(hidden)), norm=norm,
                               activation=activation, out_activation=out_activation)
        super().__init__(encoder, decoder, code_dim)


class DCGANAutoencoder(Autoencoder):
    """Convolutional autoencoder: a DCGAN discriminator to the code, a DCGAN generator back
    (BEGAN's and EBGAN's image discriminators, 8 to 128 px).

    Args:
        in_shape: (C, H, W).
        code_dim: size of the bottleneck code (BEGAN's h).
        base_channels / max_channels: widths of both halves (see nets.dcgan).
        norm: batch | layer | instance | none (both halves).
        activation: hidden activation (BEGAN uses elu).
        out_activation: decoder output (none lets reconstructions leave [-1, 1]).
    """

    def __init__(self, in_shape: Sequence[int], code_dim: int = 64, base_channels: int = 32,
                 max_channels: int = 256, norm: str = "batch", activation: str = "leaky_relu",
                 out_activation: str = "none", init: str = "dcgan"):
        encoder = DCGANDiscriminator(in_shape, out_dim=code_dim, base_channels=base_channels,
                                     max_channels=max_channels, norm=norm, activation=activation,
                                     init=init)
        decoder = DCGANGenerator(code_dim, in_shape, base_channels=base_channels,
                                 max_channels=max_channels, norm=norm, activation=activation,
                                 out_activation=out_activation, init=init)
        super().__init__(encoder, decoder, code_dim)
