"""The projection discriminator (Miyato & Koyama 2018) around any discriminator net."""

from __future__ import annotations

import torch
from torch import nn

from lit_gen.nets.layers import maybe_spectral


class ProjectionDiscriminator(nn.Module):
    """D(x, y) = head(phi(x)) + <V y, phi(x)>, phi = `base.features`, y one-hot (B, K).

    A bias-free linear map of the one-hot label is the class embedding V of the paper.

    Args:
        base: a discriminator net with `features`, `feature_dim` and `head`, built without
            a condition input.
        num_classes: K.
        spectral: spectral-normalise the embedding too (as the paper does with SN nets).
    """

    def __init__(self, base: nn.Module, num_classes: int, spectral: bool = False):
        super().__init__()
        self.base = base
        self.feature_dim = base.feature_dim
        embed = nn.Linear(num_classes, base.feature_dim, bias=False)
        nn.init.normal_(embed.weight, 0.0, 0.02)
        self.embed = maybe_spectral(embed, "spectral" if spectral else "none")

    def features(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        return self.base.features(x)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.base.features(x)  # (B, F)
        out = self.base.head(h)  # (B, 1)
        if cond is None:
            return out
        return out + (self.embed(cond) * h).sum(1, keepdim=True)
