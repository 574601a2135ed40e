"""Binarized images for Bernoulli likelihoods (`data.binarize=true`).

`data.binarization` says how:
- `threshold` (default): x > 0 -> 1 else -1, once at load time (a fixed, "static" set);
- `dynamic`: each pixel is 1 with probability equal to its intensity, (x + 1) / 2, re-drawn
  every time an image is read (Salakhutdinov & Murray 2008; the protocol of the IWAE and
  pythae likelihood tables). The data keep their grey intensities; training batches, the
  validation batches and the likelihood evaluation draw fresh binary images from them.
"""

from __future__ import annotations

import torch

from lit_gen.errors import ConfigError

BINARIZATIONS = ("threshold", "dynamic")


def binarization_of(data_cfg) -> str:
    """'none', 'threshold' or 'dynamic': what the likelihood protocol records."""
    def get(key, default):  # a config node, or any object with these attributes
        return data_cfg.get(key, default) if hasattr(data_cfg, "get") else \
            getattr(data_cfg, key, default)

    if not get("binarize", False):
        return "none"
    mode = get("binarization", "threshold")
    if mode not in BINARIZATIONS:
        raise ConfigError(f"data.binarization: unknown binarization '{mode}'. Valid "
                          f"binarizations: {', '.join(BINARIZATIONS)}")
    return mode


def dynamic_binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Images in [-1, 1] -> {-1, 1}, each pixel 1 with probability (x + 1) / 2, on x's device."""
    p = ((x + 1.0) * 0.5).clamp(0.0, 1.0)
    u = torch.rand(x.shape, device=x.device, generator=generator, dtype=x.dtype)
    return torch.where(u < p, 1.0, -1.0).to(x.dtype)
