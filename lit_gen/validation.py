"""Validation of a whole run config: everything the schema (`lit_gen.config`) cannot check.

Registry names, net and model arguments, ranges, and the rules that cross sections (a
metric that needs image data, a monitored metric that must be computed, fast paths that
need a precision). It imports the registries; `lit_gen.config` stays a leaf.
"""

from __future__ import annotations

from omegaconf import DictConfig

from lit_gen.config import compose
from lit_gen.data import DATASETS
from lit_gen.data.binarize import binarization_of
from lit_gen.errors import ConfigError
from lit_gen.metrics import IMAGE_METRICS, METRIC_NAMES, SPLITS, metric_of_key
from lit_gen.metrics.extractors import FEATURE_EXTRACTORS
from lit_gen.metrics.latent_samplers import LATENT_SAMPLERS
from lit_gen.metrics.likelihood import supports_likelihood
from lit_gen.models import MODELS, validate_model_config
from lit_gen.models.base import check_nonfinite_policy
from lit_gen.models.optim import validate_fast_paths


def load(config_files: list[str] | tuple[str, ...] = (), overrides: list[str] = ()) -> DictConfig:
    """Defaults <- each yaml file in order <- dotlist overrides, then validation."""
    cfg = compose(config_files, overrides)
    validate(cfg)
    return cfg


def validate(cfg: DictConfig) -> None:
    """Check everything the schema cannot: registry names, net and model arguments, ranges."""
    DATASETS.get(cfg.data.name, "data.name")
    MODELS.get(cfg.model.name, "model.name")
    positive = {
        "data.batch_size": cfg.data.batch_size,
        "data.group_batches": cfg.data.group_batches,
        "model.latent_dim": cfg.model.latent_dim,
        "model.n_critic": cfg.model.n_critic,
        "run.n_grid": cfg.run.n_grid,
        "metrics.num_samples": cfg.metrics.num_samples,
    }
    for key, value in positive.items():
        if value <= 0:
            raise ConfigError(f"{key} must be positive, got {value}")
    for key in ("sample_every_n_epochs", "threads"):  # None: the run's automatic choice
        value = cfg.run[key]
        if value is not None and value <= 0:
            raise ConfigError(f"run.{key} must be positive or null (automatic), got {value}")
    if cfg.run.write_every_s < 0:
        raise ConfigError(f"run.write_every_s must be >= 0 seconds, got {cfg.run.write_every_s}")
    check_nonfinite_policy(cfg.run.on_nonfinite)
    if not 0.0 <= cfg.data.val_fraction < 1.0:
        raise ConfigError(f"data.val_fraction must be in [0, 1), got {cfg.data.val_fraction}")
    if cfg.run.monitor_mode not in ("min", "max"):
        raise ConfigError(f"run.monitor_mode must be 'min' or 'max', got '{cfg.run.monitor_mode}'")
    if cfg.run.monitor and cfg.run.monitor.startswith("train/") and cfg.run.monitor.endswith("_step"):
        raise ConfigError(f"run.monitor={cfg.run.monitor}: a single training step's value is not "
                          f"monitored; use {cfg.run.monitor.removesuffix('_step')}_epoch "
                          "(the epoch mean) or a val/ or sample metric")
    if cfg.data.image_size is not None and cfg.data.image_size < 4:
        raise ConfigError(f"data.image_size must be >= 4, got {cfg.data.image_size}")
    if cfg.data.channels not in (None, 1, 3):
        raise ConfigError(f"data.channels must be 1 or 3, got {cfg.data.channels}")
    binarization_of(cfg.data)
    validate_model_config(cfg.model)
    validate_members_and_pack(cfg)
    validate_fast_paths(cfg)
    validate_metrics_config(cfg)


def validate_metrics_config(cfg) -> None:
    """Everything about `metrics` that can be checked before a run starts, including the
    feature extractor's weights (offline without Inception weights fails here)."""
    m = cfg.metrics
    for name in m.names:
        if name not in METRIC_NAMES:
            raise ConfigError(f"metrics.names: unknown metric '{name}'. "
                              f"Valid metrics: {', '.join(METRIC_NAMES)}")
    if len(set(m.names)) != len(m.names):
        raise ConfigError(f"metrics.names lists a metric twice: {list(m.names)}")
    if m.curve_names is not None:
        extra = [n for n in m.curve_names if n not in m.names]
        if extra or not m.curve_names:
            raise ConfigError(f"metrics.curve_names={list(m.curve_names)} must be a non-empty "
                              f"subset of metrics.names={list(m.names)} (or null: all of them)")
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
    if not 0 < m.class_min_share <= 1:
        raise ConfigError(f"metrics.class_min_share must be in (0, 1], got {m.class_min_share}")
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
    autoencoder = callable(getattr(model_cls, "encode_mean", None))
    if "recon_fid" in m.names and not autoencoder:
        raise ConfigError(f"metrics.names: 'recon_fid' needs an autoencoder (a model with an "
                          f"encoder); '{cfg.model.name}' has none")
    for name in m.also_latent_samplers:
        LATENT_SAMPLERS.get(name, "metrics.also_latent_samplers")
    if m.also_latent_samplers:
        if not autoencoder:
            raise ConfigError(f"metrics.also_latent_samplers needs an autoencoder (a model with "
                              f"an encoder); '{cfg.model.name}' has none")
        if len(set(m.also_latent_samplers)) != len(m.also_latent_samplers):
            raise ConfigError(f"metrics.also_latent_samplers={list(m.also_latent_samplers)}: "
                              "name each sampler once")
    if m.latent_sampler != "prior" and not autoencoder:
        raise ConfigError(f"metrics.latent_sampler={m.latent_sampler} needs an autoencoder (a "
                          f"model with an encoder); '{cfg.model.name}' has none")
    if image:
        extractor = FEATURE_EXTRACTORS.get(m.feature_extractor, "metrics.feature_extractor")
        if "classes" in m.names and "classes" not in extractor.layers:
            raise ConfigError(f"metrics.names: 'classes' counts a domain classifier's classes; "
                              f"set metrics.feature_extractor=classifier (not "
                              f"'{m.feature_extractor}')")
        extractor.check(m)

    monitored = metric_of_key(cfg.run.monitor)
    if monitored is not None:
        if monitored not in m.names:
            raise ConfigError(f"run.monitor={cfg.run.monitor} needs metrics.names to include "
                              f"'{monitored}'")
        if m.curve_names is not None and monitored not in m.curve_names:
            raise ConfigError(f"run.monitor={cfg.run.monitor} needs metrics.curve_names to "
                              f"include '{monitored}' (or metrics.curve_names=null)")
        if m.every_n_epochs is None:
            raise ConfigError(f"run.monitor={cfg.run.monitor} needs metrics.every_n_epochs "
                              "(the epochs at which it is computed and the best checkpoint kept)")


def validate_members_and_pack(cfg: DictConfig) -> None:
    """`seeds` (an ensemble of members) and `model.pack` (PacGAN) against the model class."""
    cls = MODELS.get(cfg.model.name, "model.name")
    if cfg.seeds is not None:
        if not cls.stackable:
            raise ConfigError(f"seeds: model '{cfg.model.name}' does not train as an ensemble "
                              "of members; run one fit per seed (a sweep over `seed`) instead")
        if len(cfg.seeds) == 0:
            raise ConfigError("seeds: give at least one seed, or null for a plain run")
        if cfg.trainer.strategy not in ("auto", "single_device") or cfg.data.num_workers:
            raise ConfigError("seeds: an ensemble trains in one process on its device batches; "
                              "drop trainer.strategy and data.num_workers")
    pack = cfg.model.pack
    if pack != 1:
        if pack < 1:
            raise ConfigError(f"model.pack must be >= 1, got {pack}")
        if not getattr(cls, "packable", False):
            raise ConfigError(f"model.pack: model '{cfg.model.name}' does not pack its "
                              "discriminator's inputs; use a loss variant of model gan")
        if cfg.data.batch_size % pack:
            raise ConfigError(f"model.pack={pack}: data.batch_size ({cfg.data.batch_size}) must "
                              "be a multiple of it")
