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

This module stays light (no torch-fidelity import): config validation imports it.
"""

from __future__ import annotations

from lit_gen.errors import ConfigError

IMAGE_METRICS = ("isc", "fid", "kid", "prc", "dc", "memorization", "fd_inf")
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


def validate_metrics_config(cfg) -> None:
    """Everything about `metrics` that can be checked before a run starts, including the
    feature extractor's weights (offline without Inception weights fails here)."""
    from lit_gen.data import DATASETS
    from lit_gen.metrics.extractors import FEATURE_EXTRACTORS
    from lit_gen.metrics.latent_samplers import LATENT_SAMPLERS
    from lit_gen.metrics.likelihood import supports_likelihood
    from lit_gen.models import MODELS

    m = cfg.metrics
    for name in m.names:
        if name not in METRIC_NAMES:
            raise ConfigError(f"metrics.names: unknown metric '{name}'. "
                              f"Valid metrics: {', '.join(METRIC_NAMES)}")
    if len(set(m.names)) != len(m.names):
        raise ConfigError(f"metrics.names lists a metric twice: {list(m.names)}")
    for key in ("real_split", "likelihood_split", "memorization_split", "recon_split"):
        if m[key] not in SPLITS:
            raise ConfigError(f"metrics.{key} must be train, val or test, got '{m[key]}'")
    positive = ("num_samples", "batch_size", "isc_splits", "kid_subsets", "kid_subset_size",
                "prc_neighborhood", "toy_samples", "iwae_k", "likelihood_batch_size",
                "dc_neighborhood", "memorization_cells", "memorization_min_cell", "fd_inf_points")
    for key in positive:
        if m[key] <= 0:
            raise ConfigError(f"metrics.{key} must be positive, got {m[key]}")
    for key in ("every_n_epochs", "likelihood_limit", "fd_inf_min_samples"):
        if m[key] is not None and m[key] <= 0:
            raise ConfigError(f"metrics.{key} must be positive or null, got {m[key]}")
    if "isc" in m.names and m.num_samples < m.isc_splits:
        raise ConfigError(f"metrics.num_samples ({m.num_samples}) must be at least "
                          f"metrics.isc_splits ({m.isc_splits})")

    if m.extractor_dtype not in (None, "float32", "float64"):
        raise ConfigError(f"metrics.extractor_dtype must be float32, float64 or null, got "
                          f"'{m.extractor_dtype}'")
    if "memorization" in m.names and m.memorization_split == m.real_split:
        raise ConfigError(f"metrics.memorization_split ({m.memorization_split}) must differ from "
                          f"metrics.real_split ({m.real_split}): the test compares the samples "
                          "with held-out real images")
    if "fd_inf" in m.names and m.fd_inf_points < 2:
        raise ConfigError(f"metrics.fd_inf_points must be at least 2 (a line is fitted), got "
                          f"{m.fd_inf_points}")
    LATENT_SAMPLERS.get(m.latent_sampler, "metrics.latent_sampler")

    kind = getattr(DATASETS.get(cfg.data.name, "data.name"), "kind", "image")
    image = [n for n in m.names if n in IMAGE_METRICS or n == "recon_fid"]
    if image and kind != "image":
        raise ConfigError(f"metrics.names: {', '.join(image)} need image data; data "
                          f"'{cfg.data.name}' is {kind} data (use metrics.names=[toy])")
    if "toy" in m.names and kind != "toy":
        raise ConfigError(f"metrics.names: 'toy' needs a 2D toy dataset (ring2d, grid2d), "
                          f"not '{cfg.data.name}'")
    if "likelihood" in m.names:
        model_cls = MODELS.get(cfg.model.name, "model.name")
        if not supports_likelihood(model_cls):
            raise ConfigError(f"metrics.names: 'likelihood' needs a model with elbo() and "
                              f"iwae_log_likelihood() (the VAE family); '{cfg.model.name}' has none")
    model_cls = MODELS.get(cfg.model.name, "model.name")
    if "recon_fid" in m.names and not callable(getattr(model_cls, "encode_mean", None)):
        raise ConfigError(f"metrics.names: 'recon_fid' needs an autoencoder (a model with an "
                          f"encoder); '{cfg.model.name}' has none")
    if m.latent_sampler != "prior" and not callable(getattr(model_cls, "encode_mean", None)):
        raise ConfigError(f"metrics.latent_sampler={m.latent_sampler} needs an autoencoder (a "
                          f"model with an encoder); '{cfg.model.name}' has none")
    if image:
        FEATURE_EXTRACTORS.get(m.feature_extractor, "metrics.feature_extractor").check(m)

    monitored = metric_of_key(cfg.run.monitor)
    if monitored is not None:
        if monitored not in m.names:
            raise ConfigError(f"run.monitor={cfg.run.monitor} needs metrics.names to include "
                              f"'{monitored}'")
        if m.every_n_epochs is None:
            raise ConfigError(f"run.monitor={cfg.run.monitor} needs metrics.every_n_epochs "
                              "(the epochs at which it is computed and the best checkpoint kept)")


__all__ = ["IMAGE_METRICS", "METRIC_KEYS", "METRIC_NAMES", "metric_of_key",
           "validate_metrics_config"]
