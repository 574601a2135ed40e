"""Toy mode metrics (Srivastava et al. 2017; Lin et al. 2018) on hand-built point sets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lit_gen.metrics.toy import toy_mode_metrics

STD = 0.01


def ring_modes() -> torch.Tensor:
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    return torch.stack([angles.cos(), angles.sin()], 1)


def at_mode(k: int, n: int, offset_std: float = 0.5) -> torch.Tensor:
    """n points offset_std standard deviations from ring mode k (alternating directions)."""
    centre = ring_modes()[k]
    dirs = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]], dtype=torch.float64)
    return centre + offset_std * STD * dirs[torch.arange(n) % 4]


def test_all_modes_uniform():
    pts = torch.cat([at_mode(k, 10) for k in range(8)])
    m = toy_mode_metrics(pts, ring_modes(), STD)
    assert m["modes_captured"] == 8
    assert m["high_quality_pct"] == pytest.approx(100.0, abs=1e-12)
    assert m["mode_reverse_kl"] == pytest.approx(0.0, abs=1e-12)


def test_single_mode_collapse():
    m = toy_mode_metrics(at_mode(3, 40), ring_modes(), STD)
    assert m["modes_captured"] == 1
    assert m["high_quality_pct"] == pytest.approx(100.0, abs=1e-12)
    assert m["mode_reverse_kl"] == pytest.approx(math.log(8), rel=1e-12)


def test_points_off_mode_lower_quality_not_histogram():
    on = torch.cat([at_mode(k, 5) for k in range(8)])  # 40 high-quality points, uniform
    off = torch.zeros(10, 2, dtype=torch.float64)  # the centre: 100 std from every mode
    m = toy_mode_metrics(torch.cat([on, off]), ring_modes(), STD)
    assert m["modes_captured"] == 8
    assert m["high_quality_pct"] == pytest.approx(80.0, abs=1e-12)
    assert m["mode_reverse_kl"] == pytest.approx(0.0, abs=1e-12)


def test_unbalanced_histogram_kl():
    pts = torch.cat([at_mode(0, 30), at_mode(1, 10)])
    m = toy_mode_metrics(pts, ring_modes(), STD)
    assert m["modes_captured"] == 2
    # p = (3/4, 1/4) on 2 of 8 modes: KL(p || u) = sum p log(8 p)
    assert m["mode_reverse_kl"] == pytest.approx(0.75 * math.log(6) + 0.25 * math.log(2), rel=1e-12)


def test_three_std_threshold_is_strict():
    inside = at_mode(0, 1, offset_std=2.99)
    outside = at_mode(1, 1, offset_std=3.01)
    m = toy_mode_metrics(torch.cat([inside, outside]), ring_modes(), STD)
    assert m["modes_captured"] == 1
    assert m["high_quality_pct"] == pytest.approx(50.0, abs=1e-12)


def test_no_high_quality_sample_gives_nan_kl():
    m = toy_mode_metrics(torch.full((5, 2), 10.0), ring_modes(), STD)
    assert m["modes_captured"] == 0
    assert m["high_quality_pct"] == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(m["mode_reverse_kl"])


def test_grid2d_modes_from_datamodule():
    from lit_gen import validation
    from lit_gen.data import build_datamodule

    dm = build_datamodule(validation.load([], ["data.name=grid2d"]).data)
    modes = dm.modes()
    assert len(modes) == 25 and dm.mode_std == pytest.approx(0.05)
    pts = torch.cat([modes, modes[:5]])  # every mode once, the first five twice
    m = toy_mode_metrics(pts, modes, dm.mode_std)
    assert m["modes_captured"] == 25
    p = np.array([2] * 5 + [1] * 20) / 30
    assert m["mode_reverse_kl"] == pytest.approx(float((p * np.log(25 * p)).sum()), rel=1e-12)


def test_matches_numpy_brute_force_on_random_points():
    rng = np.random.default_rng(0)
    modes = ring_modes().numpy()
    pts = modes[rng.integers(0, 8, 2500)] + rng.normal(0, 0.02, (2500, 2))  # some outside 3 std
    pts[:300] = rng.uniform(-1.5, 1.5, (300, 2))
    d = np.sqrt(((pts[:, None, :] - modes[None]) ** 2).sum(-1))
    nearest, dist = d.argmin(1), d.min(1)
    hq = dist < 3 * STD
    counts = np.bincount(nearest[hq], minlength=8)
    p = counts / counts.sum()
    kl = float(sum(pi * np.log(8 * pi) for pi in p if pi > 0))
    m = toy_mode_metrics(torch.from_numpy(pts), ring_modes(), STD)
    assert m["modes_captured"] == int((counts > 0).sum())
    assert m["high_quality_pct"] == pytest.approx(100 * hq.mean(), rel=1e-12)
    assert m["mode_reverse_kl"] == pytest.approx(kl, rel=1e-10)
    assert 0 < m["high_quality_pct"] < 100
