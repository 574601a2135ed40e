"""Sample-quality and likelihood metrics (docs/evaluation.md).

- image metrics (isc, fid, kid, prc) through torch-fidelity with a registered feature
  extractor (`lit_gen.metrics.extractors`, `lit_gen.metrics.fidelity`), and on the same
  features density/coverage, the data-copying test and FD-infinity
  (`lit_gen.metrics.feature_metrics`);
- reconstruction FID and ex-post latent samplers for autoencoders
  (`lit_gen.metrics.latent_samplers`);
- toy mode metrics for ring2d / grid2d (`lit_gen.metrics.toy`);
- likelihood (ELBO, IWAE) for models that define them (`lit_gen.metrics.likelihood`);
- one evaluation procedure for training and `lit_gen.evaluate` (`lit_gen.metrics.evaluator`).

This module stays light (no torch-fidelity import): `lit_gen.validation` imports it.
"""

from __future__ import annotations

IMAGE_METRICS = ("isc", "fid", "kid", "prc", "dc", "memorization", "fd_inf", "classes")
METRIC_NAMES = (*IMAGE_METRICS, "recon_fid", "toy", "likelihood")

#: metric name -> the keys it logs and writes to metrics.json
METRIC_KEYS = {
    "isc": ("isc_mean", "isc_std"),
    "fid": ("fid",),
    "kid": ("kid_mean", "kid_std"),
    "prc": ("precision", "recall", "f_score"),
    "dc": ("density", "coverage"),
    "memorization": ("ct_score", "nn_distance_ratio"),
    "fd_inf": ("fd_inf",),  # also fid_n<N> for each sample size of the fit
    "classes": ("classes_covered", "class_reverse_kl"),  # domain classifier's predictions
    "recon_fid": ("recon_fid",),
    "toy": ("modes_captured", "high_quality_pct", "mode_reverse_kl"),
    "likelihood": ("elbo", "iwae_ll"),
}
SPLITS = ("train", "val", "test")


def metric_of_key(key: str | None) -> str | None:
    """The metric that logs `key` ("fid" -> "fid", "isc_mean" -> "isc"), else None."""
    for name, keys in METRIC_KEYS.items():
        if key in keys:
            return name
    return None


__all__ = ["IMAGE_METRICS", "METRIC_KEYS", "METRIC_NAMES", "SPLITS", "metric_of_key"]
