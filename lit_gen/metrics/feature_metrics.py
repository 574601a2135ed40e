"""Metrics computed on feature vectors (the FID / precision-recall features): density and
coverage, the data-copying test, FID at several sample sizes and its extrapolation.

Pure functions of (N, D) float tensors; `lit_gen.metrics.fidelity` extracts the features
with torch-fidelity and calls them.
"""

from __future__ import annotations

import math

import numpy as np
import torch

Tensor = torch.Tensor


def _cdist(a: Tensor, b: Tensor, block: int = 4096) -> Tensor:
    """Euclidean distances (len(a), len(b)) in float64, in row blocks."""
    a, b = a.double(), b.double()
    return torch.cat([torch.cdist(a[i:i + block], b) for i in range(0, len(a), block)])


def kth_neighbour_radius(x: Tensor, k: int) -> Tensor:
    """Distance of each row of x to its k-th nearest other row, (N,)."""
    if len(x) <= k:
        raise ValueError(f"k={k} nearest neighbours need more than {k} points, got {len(x)}")
    d = _cdist(x, x)
    # the 0-th smallest is the point itself (distance 0)
    return d.kthvalue(k + 1, dim=1).values


def density_coverage(real: Tensor, fake: Tensor, k: int = 5) -> dict[str, float]:
    """Density and coverage of Naeem et al. 2020 ("Reliable Fidelity and Diversity Metrics
    for Generative Models"), on features.

    With B(r_i) the ball around real feature r_i whose radius is the distance to its k-th
    nearest real neighbour:
      density  = 1 / (k M) * sum_j sum_i 1[f_j in B(r_i)]   (M generated; can exceed 1)
      coverage = 1 / N * sum_i 1[exists j: f_j in B(r_i)]   (N real; in [0, 1])

    Args:
        real: (N, D) real features; fake: (M, D) generated features.
        k: the neighbourhood size (5 in the paper).
    """
    radius = kth_neighbour_radius(real, k)  # (N,)
    inside = _cdist(real, fake) < radius[:, None]  # (N, M)
    return {"density": float(inside.sum()) / (k * len(fake)),
            "coverage": float(inside.any(dim=1).double().mean())}


def class_coverage(real_logits: Tensor, fake_logits: Tensor,
                   min_share: float = 0.1) -> tuple[dict[str, float], dict]:
    """Classes a generator covers, by a domain classifier's predictions (argmax of logits).

    With p_c the share of the real images predicted as class c and q_c that of the
    generated ones, class c is covered when q_c >= min_share * p_c (a class the real images
    never fall in cannot be covered), and the reverse KL of the class histograms is
      KL(q || p) = sum_{c: q_c > 0} q_c log(q_c / p_c)   (nats; inf if q puts mass where p has none),
    the image analogue of the toy sets' mode reverse KL (q against the data's own class
    shares instead of uniform modes).

    Args:
        real_logits: (N, K) the classifier's logits on real images; fake_logits: (M, K).
        min_share: the fraction of its real share a class needs among the generated images.

    Returns:
        ({"classes_covered": count, "class_reverse_kl": nats},
         {"real": per-class counts, "generated": per-class counts}).
    """
    if real_logits.ndim != 2 or fake_logits.shape[1:] != real_logits.shape[1:]:
        raise ValueError(f"class logits must be (N, K) on both sides, got "
                         f"{tuple(real_logits.shape)} and {tuple(fake_logits.shape)}")
    k = real_logits.shape[1]
    real_counts = torch.bincount(real_logits.argmax(dim=1), minlength=k).double()
    fake_counts = torch.bincount(fake_logits.argmax(dim=1), minlength=k).double()
    p, q = real_counts / real_counts.sum(), fake_counts / fake_counts.sum()
    covered = (p > 0) & (q >= min_share * p)
    nz = q > 0
    reverse_kl = float((q[nz] * (q[nz] / p[nz]).log()).sum())
    counts = {"real": [int(c) for c in real_counts], "generated": [int(c) for c in fake_counts]}
    return {"classes_covered": int(covered.sum()), "class_reverse_kl": reverse_kl}, counts


def _mann_whitney_z(gen: np.ndarray, test: np.ndarray) -> float:
    """Z-scored Mann-Whitney U of (generated, held-out) distances, as in Meehan et al.'s
    released code: U counts pairs where the generated distance is the larger (ties 1/2),
    mean nm/2 - 0.5 (continuity), std sqrt(nm(n+m+1)/12)."""
    from scipy.stats import mannwhitneyu

    m, n = len(gen), len(test)
    u = mannwhitneyu(gen, test, alternative="less").statistic
    return float((u - (n * m / 2 - 0.5)) / math.sqrt(n * m * (n + m + 1) / 12))


def data_copying_ct(train: Tensor, heldout: Tensor, gen: Tensor, cells: int = 10,
                    min_cell: int = 20, seed: int = 0) -> dict:
    """The data-copying test statistic C_T of Meehan, Chaudhuri & Dasgupta 2020.

    The feature space is cut into `cells` k-means cells of the training features. In each
    cell, the distances of generated and held-out points to their nearest training point in
    that cell are compared by a z-scored Mann-Whitney U; C_T is the average of the cells'
    z-scores weighted by the held-out fraction in each cell, over the cells that hold at
    least `min_cell` generated points (the paper's tau = min_cell / m). C_T around 0: samples
    sit as far from the training set as new real data does; C_T << 0 (e.g. below -3): data
    copying; C_T >> 0: underfitting. Also returned: `nn_distance_ratio`, the median distance
    of generated points to their nearest training point over that of the held-out points
    (1 for a model as novel as new data, 0 for copies).

    Args:
        train: (T, D) training features; heldout: (N, D) real features not trained on;
        gen: (M, D) generated features.
        cells: number of k-means cells; min_cell: generated points a cell needs to count.
        seed: k-means seed.
    """
    from sklearn.cluster import KMeans

    t, h, g = (x.double().cpu().numpy() for x in (train, heldout, gen))
    cells = min(cells, len(t))
    km = KMeans(n_clusters=cells, n_init=3, random_state=seed).fit(t)
    t_cell, h_cell, g_cell = km.labels_, km.predict(h), km.predict(g)
    zs, weights = [], []
    for c in range(cells):
        gc, hc, tc = g[g_cell == c], h[h_cell == c], t[t_cell == c]
        if len(gc) < min_cell or len(hc) == 0:
            continue
        tc_t = torch.from_numpy(tc)
        d_gen = _cdist(torch.from_numpy(gc), tc_t).min(dim=1).values.numpy()
        d_test = _cdist(torch.from_numpy(hc), tc_t).min(dim=1).values.numpy()
        zs.append(_mann_whitney_z(d_gen, d_test))
        weights.append(len(hc) / len(h))
    ct = float(np.dot(weights, zs) / np.sum(weights)) if zs else math.nan
    tt = torch.from_numpy(t)
    d_gen_all = _cdist(torch.from_numpy(g), tt).min(dim=1).values
    d_test_all = _cdist(torch.from_numpy(h), tt).min(dim=1).values
    ratio = float(d_gen_all.median() / d_test_all.median()) if float(d_test_all.median()) > 0 else math.nan
    return {"ct_score": ct, "nn_distance_ratio": ratio, "cells_used": len(zs), "cells": cells}


def frechet_distance(fake: Tensor, real_stats: dict) -> float:
    """FID of features `fake` against real statistics {"mu", "sigma"}, with torch-fidelity's
    own statistics and distance functions."""
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    fake_stats = fid_features_to_statistics(fake.double().cpu())
    real_stats = {k: np.asarray(v, dtype=np.float64) for k, v in real_stats.items()}
    return float(next(iter(fid_statistics_to_metric(fake_stats, real_stats, False).values())))


def sample_sizes(n_max: int, points: int, n_min: int | None = None) -> list[int]:
    """`points` sample sizes from n_min (default n_max // 5) to n_max, evenly spaced in 1/n
    (Chong & Forsyth 2020 fit FID linearly in 1/n)."""
    n_min = max(2, n_max // 5 if n_min is None else n_min)
    if points == 1 or n_min >= n_max:
        return [n_max]
    inv = np.linspace(1.0 / n_min, 1.0 / n_max, points)
    return sorted({int(round(1.0 / v)) for v in inv})


def fd_infinity(fake: Tensor, real_stats: dict, sizes: list[int], seed: int = 0) -> dict:
    """FID at several generated-sample counts and FD-infinity (Chong & Forsyth 2020,
    "Effectively Unbiased FID and Inception Score and where to find them"): FID_n is
    computed on a random subset of n generated features for each n in `sizes`, a line
    FID_n = FD_inf + slope / n is fitted by least squares, and its intercept is the
    estimate of the FID at infinitely many samples.

    Returns {"fd_inf": intercept, "fid_n": {n: FID_n}, "slope": slope}.
    """
    gen = np.random.RandomState(seed)
    fids = {}
    for n in sizes:
        idx = gen.choice(len(fake), size=n, replace=False) if n < len(fake) else np.arange(len(fake))
        fids[n] = frechet_distance(fake[torch.from_numpy(idx)], real_stats)
    if len(fids) < 2:
        return {"fd_inf": math.nan, "fid_n": fids, "slope": math.nan}
    inv = np.array([1.0 / n for n in fids])
    slope, intercept = np.polyfit(inv, np.array(list(fids.values())), 1)
    return {"fd_inf": float(intercept), "fid_n": fids, "slope": float(slope)}
