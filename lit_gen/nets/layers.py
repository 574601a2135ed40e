"""Small building blocks shared by the nets: activations and normalisation by name, and
`eval_mode` for running any module in eval mode."""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn
from torch.nn.utils import parametrizations

from lit_gen.errors import ConfigError
from lit_gen.registry import Registry

ACTIVATIONS: Registry = Registry("activation")
ACTIVATIONS.add("relu", lambda: nn.ReLU(inplace=True))
ACTIVATIONS.add("leaky_relu", lambda: nn.LeakyReLU(0.2, inplace=True))
ACTIVATIONS.add("elu", lambda: nn.ELU(inplace=True))
ACTIVATIONS.add("gelu", nn.GELU)
ACTIVATIONS.add("silu", lambda: nn.SiLU(inplace=True))
ACTIVATIONS.add("tanh", nn.Tanh)
ACTIVATIONS.add("sigmoid", nn.Sigmoid)
ACTIVATIONS.add("none", nn.Identity)

NORMS = ("none", "batch", "layer", "instance", "spectral")


def check_norm(norm: str, key: str = "norm") -> None:

    if norm not in NORMS:
        raise ConfigError(f"{key}: unknown norm '{norm}'. Valid norms: {', '.join(NORMS)}")


def norm_1d(norm: str, features: int) -> nn.Module:
    """Normalisation after a Linear layer (spectral norm is applied to the layer instead)."""
    check_norm(norm)
    if norm == "batch":
        return nn.BatchNorm1d(features)
    if norm in ("layer", "instance"):
        return nn.LayerNorm(features)
    return nn.Identity()


def norm_2d(norm: str, channels: int) -> nn.Module:
    """Normalisation after a conv layer; 'layer' normalises over (C, H, W)."""
    check_norm(norm)
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "layer":
        return nn.GroupNorm(1, channels)
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    return nn.Identity()


def maybe_spectral(layer: nn.Module, norm: str) -> nn.Module:
    return parametrizations.spectral_norm(layer) if norm == "spectral" else layer


def n_resolution_levels(size: int) -> tuple[int, int]:
    """(levels, base): the most x2 steps with base = size / 2**levels an integer >= 4.

    8 -> (1, 4), 16 -> (2, 4), 28 -> (2, 7), 32 -> (3, 4), 64 -> (4, 4).
    """
    levels = 0
    while size % (2 ** (levels + 1)) == 0 and size // 2 ** (levels + 1) >= 4:
        levels += 1
    return levels, size // 2**levels


def dcgan_init(module: nn.Module) -> None:
    """Radford et al. 2015: conv weights ~ N(0, 0.02), norm scales ~ N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            w = getattr(m, "parametrizations", None)
            weight = w.weight.original if w is not None and hasattr(w, "weight") else m.weight
            nn.init.normal_(weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d | nn.GroupNorm):
            if m.weight is not None:
                nn.init.normal_(m.weight, 1.0, 0.02)
                nn.init.zeros_(m.bias)


def flat_size(shape) -> int:
    return int(math.prod(shape))


def append_condition(x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
    """Concatenate a (B, K) condition to a (B, F) input or as K constant maps to (B, C, H, W)."""
    if cond is None:
        return x
    if x.ndim == 2:
        return torch.cat([x, cond.to(x.dtype)], 1)
    maps = cond.to(x.dtype)[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
    return torch.cat([x, maps], 1)


@contextlib.contextmanager
def eval_mode(module: nn.Module):
    """Eval mode (batch norm statistics, no dropout) for the duration, then the module's
    previous mode restored."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
