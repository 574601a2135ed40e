"""Density/coverage, the data-copying test and FD-infinity against independent references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from lit_gen.metrics.feature_metrics import (
    class_coverage,
    data_copying_ct,
    density_coverage,
    fd_infinity,
    frechet_distance,
    sample_sizes,
)


def numpy_density_coverage(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """Naeem et al. 2020, written from the paper's definitions with plain numpy loops."""
    n, m = len(real), len(fake)
    radii = np.empty(n)
    for i in range(n):
        d = np.sqrt(((real - real[i]) ** 2).sum(1))
        radii[i] = np.sort(d)[k]  # sorted[0] is the point itself
    count, covered = 0, 0
    for i in range(n):
        d = np.sqrt(((fake - real[i]) ** 2).sum(1))
        inside = d < radii[i]
        count += inside.sum()
        covered += inside.any()
    return count / (k * m), covered / n


def test_density_coverage_equals_numpy_reference():
    g = np.random.default_rng(0)
    real, fake = g.normal(size=(120, 6)), g.normal(0.3, 1.2, size=(90, 6))
    ref_d, ref_c = numpy_density_coverage(real, fake, 5)
    out = density_coverage(torch.from_numpy(real), torch.from_numpy(fake), k=5)
    assert 0.1 < ref_c < 1.0 and ref_d > 0.05  # neither trivial end
    assert out["density"] == pytest.approx(ref_d, rel=1e-12)
    assert out["coverage"] == pytest.approx(ref_c, rel=1e-12)


def test_density_coverage_closed_forms():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(200, 4, generator=g, dtype=torch.float64)
    same = density_coverage(x, x + 1e-9, k=5)
    assert same["coverage"] == pytest.approx(1.0)  # every ball holds (a copy of) its centre
    far = density_coverage(x, x + 1000.0, k=5)
    assert far == {"density": pytest.approx(0.0), "coverage": pytest.approx(0.0)}


def test_copycat_training_images_are_flagged_and_another_real_split_is_not():
    g = torch.Generator().manual_seed(2)
    centres = torch.randn(8, 5, generator=g, dtype=torch.float64) * 4
    def draw(n):
        return centres[torch.randint(8, (n,), generator=g)] + torch.randn(n, 5, generator=g,
                                                                           dtype=torch.float64)
    train, heldout, other = draw(1500), draw(500), draw(500)
    copies = train[torch.randperm(len(train), generator=g)[:500]] + 1e-6  # training images
    copied = data_copying_ct(train, heldout, copies, cells=5, min_cell=20)
    novel = data_copying_ct(train, heldout, other, cells=5, min_cell=20)
    assert copied["ct_score"] < -10 and copied["nn_distance_ratio"] < 1e-3
    assert abs(novel["ct_score"]) < 3 and novel["nn_distance_ratio"] == pytest.approx(1.0, abs=0.2)
    assert copied["cells_used"] == novel["cells_used"] == 5


def test_mann_whitney_z_matches_hand_count():
    """C_T of one cell is the z-scored U statistic: U counted by hand over all pairs."""
    from lit_gen.metrics.feature_metrics import _mann_whitney_z

    gen, test = np.array([0.1, 0.5, 0.9, 1.3]), np.array([0.2, 0.3, 1.0])
    u = sum((g > t) + 0.5 * (g == t) for g in gen for t in test)  # 5
    m, n = 4, 3
    ref = (u - (m * n / 2 - 0.5)) / np.sqrt(m * n * (m + n + 1) / 12)
    assert _mann_whitney_z(gen, test) == pytest.approx(ref, rel=1e-12)


def gaussian_fid(mu1, s1, mu2, s2) -> float:
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean))


def test_fd_infinity_recovers_closed_form_fid_of_gaussians():
    """Generated N(0, I) against exact N(mu, S) statistics (only the generated side is
    biased): over 8 draws FID_400 and FID_4000 sit above the closed-form FID, FD-inf on it."""
    d = 32
    a = np.random.default_rng(0).normal(size=(d, d)) / np.sqrt(d)
    s1, s2 = np.eye(d), 0.5 * a @ a.T + 0.8 * np.eye(d)
    mu1, mu2 = np.zeros(d), np.full(d, 0.2)
    truth = gaussian_fid(mu1, s1, mu2, s2)
    real_stats = {"mu": mu2, "sigma": s2}
    sizes = sample_sizes(4000, 5, 400)
    inf, full, small = [], [], []
    for seed in range(8):
        fake = torch.from_numpy(np.random.default_rng(seed + 10).multivariate_normal(mu1, s1, 4000))
        out = fd_infinity(fake, real_stats, sizes, seed=seed)
        assert set(out["fid_n"]) == set(sizes) and out["slope"] > 0
        assert out["fid_n"][4000] == pytest.approx(frechet_distance(fake, real_stats), rel=1e-12)
        inf.append(out["fd_inf"])
        full.append(out["fid_n"][4000])
        small.append(out["fid_n"][400])
    assert np.mean(small) - truth > 0.5  # the 1/n bias is plain at n=400 ...
    assert 0.02 < np.mean(full) - truth < 0.2  # ... and still there at n=4000
    assert np.mean(inf) == pytest.approx(truth, rel=0.05)


def test_sample_sizes_are_even_in_one_over_n():
    sizes = sample_sizes(10000, 5)
    assert sizes[0] == 2000 and sizes[-1] == 10000 and len(sizes) == 5
    inv = 1 / np.array(sizes)
    assert np.diff(inv) == pytest.approx(np.full(4, np.diff(inv).mean()), rel=1e-3)


def _logits(classes: list[int], k: int = 4) -> torch.Tensor:
    """Logits whose argmax is each given class (non-trivial values elsewhere)."""
    g = torch.Generator().manual_seed(len(classes))
    x = torch.randn(len(classes), k, generator=g)
    x[torch.arange(len(classes)), torch.tensor(classes)] = 10.0
    return x


def test_class_coverage_hand_computed():
    real = _logits([0] * 4 + [1] * 4 + [2] * 2)  # p = (.4, .4, .2, 0)
    fake = _logits([0] * 5 + [1] + [2] * 4)  # q = (.5, .1, .4, 0)
    values, counts = class_coverage(real, fake, min_share=0.1)
    assert counts == {"real": [4, 4, 2, 0], "generated": [5, 1, 4, 0]}
    # KL(q || p) = .5 ln(.5/.4) + .1 ln(.1/.4) + .4 ln(.4/.2)
    assert values["class_reverse_kl"] == pytest.approx(0.2502012, abs=1e-6)
    from scipy.stats import entropy
    assert values["class_reverse_kl"] == pytest.approx(entropy([.5, .1, .4], [.4, .4, .2]), rel=1e-12)
    assert values["classes_covered"] == 3
    # class 1 holds .1 of the samples against .4 of the real images: covered down to a
    # required share of .25, not above
    assert class_coverage(real, fake, min_share=0.25)[0]["classes_covered"] == 3
    assert class_coverage(real, fake, min_share=0.26)[0]["classes_covered"] == 2


def test_class_coverage_collapse_and_mass_outside_the_data():
    real = _logits([0, 1, 2, 3] * 5)  # uniform over 4 classes
    collapsed, _ = class_coverage(real, _logits([2] * 7))
    assert collapsed == {"classes_covered": 1, "class_reverse_kl": pytest.approx(np.log(4))}
    same, _ = class_coverage(real, _logits([0, 1, 2, 3] * 3))
    assert same == {"classes_covered": 4, "class_reverse_kl": pytest.approx(0.0, abs=1e-12)}
    outside, _ = class_coverage(_logits([0, 1] * 5), _logits([0, 1, 3]))
    assert outside["classes_covered"] == 2 and outside["class_reverse_kl"] == float("inf")
    with pytest.raises(ValueError, match="class logits must be"):
        class_coverage(real, torch.zeros(3, 5))
