"""Mode metrics for the 2D mixtures (ring2d, grid2d).

Srivastava et al. 2017 (VEEGAN) and Lin et al. 2018 (PacGAN), on 2,500 generated points:

- a sample is *high quality* when it lies within 3 standard deviations of its nearest mode
  (strictly less than 3 std, as in PacGAN's released evaluation code,
  fjxmlzn/PacGAN `synthetic_data_experiments/PacGAN/pacgan/extensions.py`, `MetricLogger`);
- a mode is *captured* when at least one high-quality sample has it as its nearest mode
  (the same code: modes with a non-zero count in the histogram of high-quality samples);
- *reverse KL*: KL(p || u) between p, the histogram of the high-quality samples over their
  nearest modes (normalised by the number of high-quality samples), and u the uniform
  distribution over the K modes (the data's mode distribution). Empty modes contribute
  0 * log 0 = 0, so no epsilon is needed (u is never 0); it is 0 when every mode holds the
  same number of samples and log(K) when all of them sit on one mode. With no high-quality
  sample at all p is undefined and the value is NaN.
"""

from __future__ import annotations

import math

import torch

Tensor = torch.Tensor

TOY_KEYS = ("modes_captured", "high_quality_pct", "mode_reverse_kl")


def toy_mode_metrics(points: Tensor, modes: Tensor, std: float,
                     threshold: float = 3.0) -> dict[str, float]:
    """Modes captured, % high-quality samples and reverse KL of the mode histogram.

    Args:
        points: generated samples (N, 2).
        modes: the K mode centres (K, 2).
        std: the (isotropic) standard deviation of every mode.
        threshold: high quality means distance < threshold * std.

    Returns:
        {"modes_captured": int count, "high_quality_pct": 0..100, "mode_reverse_kl": nats}.
    """
    points = points.detach().double().cpu()
    modes = modes.detach().double().cpu()
    if points.ndim != 2 or points.shape[1] != modes.shape[1]:
        raise ValueError(f"points must be (N, {modes.shape[1]}), got {tuple(points.shape)}")
    k = len(modes)
    dist, nearest = torch.cdist(points, modes).min(dim=1)  # (N,)
    high = dist < threshold * std
    counts = torch.bincount(nearest[high], minlength=k).double()  # (K,)
    n_high = counts.sum().item()
    if n_high > 0:
        p = counts / n_high
        nz = p > 0
        reverse_kl = float((p[nz] * (p[nz] * k).log()).sum())
    else:
        reverse_kl = math.nan
    return {
        "modes_captured": int((counts > 0).sum()),
        "high_quality_pct": 100.0 * high.double().mean().item() if len(points) else math.nan,
        "mode_reverse_kl": reverse_kl,
    }
