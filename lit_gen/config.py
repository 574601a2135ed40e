"""The typed config schema and its loading (defaults <- yaml files <- overrides).

A leaf module: it knows the schema, not the registries. An unknown key or a wrong type is a
ConfigError naming the key and the valid choices; `lit_gen.validation` checks the rest
(registry names, net and model arguments, cross-section rules) before any work starts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lit_gen.errors import ConfigError


@dataclass
class DataConfig:
    """Which data, how it is split and batched. `batch_size` is per device (per DDP process)."""

    name: str = "digits"
    root: str = "data"  # where torchvision sets and image folders live
    download: bool = True
    batch_size: int = 64
    num_workers: int = 0
    val_fraction: float = 0.1  # deterministic (seeded) split of the training set
    image_size: int | None = None  # resize images to this side (None: native size)
    channels: int | None = None  # image_folder: 1 or 3 (None: 3)
    limit: int | None = None  # use only the first N training examples (tiny runs, tests)
    binarize: bool = False  # images to {-1, 1}, for Bernoulli likelihoods
    binarization: str = "threshold"  # threshold (x > 0, once) | dynamic (Bernoulli, every read)
    # toy 2D sets
    n_samples: int = 20000
    radius: float | None = None  # ring2d: circle radius (1); grid2d: spacing (2)
    std: float | None = None  # mode std (ring2d 0.01, grid2d 0.05)
    # hold the whole training set as one tensor on the training device; shuffle, augment and
    # batch there, with no DataLoader (small sets: MNIST-size and below; see docs/performance.md)
    on_device: bool = False
    hflip: bool = False  # augmentation: random horizontal flips of training images
    # hand the model this many training batches per Lightning batch, trained in turn: the
    # same steps, Lightning's per-batch cost paid once per K (tiny models; one process only)
    group_batches: int = 1


@dataclass
class OptimConfig:
    """One optimizer and its optional LR scheduler (stepped once per epoch)."""

    name: str = "adam"  # adam | adamw | rmsprop | sgd
    lr: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    weight_decay: float = 0.0
    momentum: float = 0.0  # sgd / rmsprop
    scheduler: str | None = None  # cosine | linear | step | exponential (None: constant)
    scheduler_args: dict[str, Any] = field(default_factory=dict)
    # torch's multi-tensor implementations; None: torch's default (foreach on CUDA)
    foreach: bool | None = None
    fused: bool | None = None  # one fused kernel per step (adam, adamw, sgd)


@dataclass
class EMAConfig:
    """Exponential moving average of the generator weights (generator only)."""

    decay: float | None = None  # None disables EMA; e.g. 0.999
    start_step: int = 0  # generator step after which averaging starts


@dataclass
class ModelConfig:
    """The model: a registered LightningModule, its nets, losses and optimizers.

    `generator` / `discriminator` / `encoder` are net specs: `{name: <net>, **kwargs}`,
    validated against the net's constructor. `params` holds the keyword arguments that only
    one model class takes (BEGAN's gamma, InfoGAN's codes, ...), validated against it.
    """

    name: str = "gan"
    latent_dim: int = 64
    generator: dict[str, Any] = field(default_factory=lambda: {"name": "mlp"})
    discriminator: dict[str, Any] = field(default_factory=lambda: {"name": "mlp"})
    encoder: dict[str, Any] | None = None
    loss: str = "nonsaturating"
    penalties: list[dict[str, Any]] = field(default_factory=list)
    n_critic: int = 1
    g_optim: OptimConfig = field(default_factory=OptimConfig)
    d_optim: OptimConfig = field(default_factory=OptimConfig)
    e_optim: OptimConfig | None = None  # third optimizer where a model has one (VAE-GAN)
    ema: EMAConfig = field(default_factory=EMAConfig)
    params: dict[str, Any] = field(default_factory=dict)
    pack: int = 1  # PacGAN (Lin et al. 2018): D scores `pack` samples concatenated
    compile: bool = False  # torch.compile the nets in place (state_dict keys unchanged)
    channels_last: bool = False  # channels_last memory format for conv nets and their inputs


@dataclass
class TrainerConfig:
    """Lightning Trainer arguments under their own names; null means Lightning's default.

    `gradient_clip_val` / `gradient_clip_algorithm` are applied by the model itself (manual
    optimization), to every optimizer step.
    """

    accelerator: str = "auto"
    devices: Any = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: Any = "32-true"
    max_epochs: int | None = 20
    max_steps: int = -1
    max_time: str | None = None
    min_epochs: int | None = None
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    val_check_interval: Any = None
    check_val_every_n_epoch: int | None = 1
    num_sanity_val_steps: int | None = 0
    log_every_n_steps: int = 10
    deterministic: Any = None
    benchmark: bool | None = None
    gradient_clip_val: float | None = None
    gradient_clip_algorithm: str | None = None
    enable_progress_bar: bool = True
    enable_model_summary: bool = True
    fast_dev_run: Any = False
    profiler: str | None = None
    detect_anomaly: bool = False
    sync_batchnorm: bool = False
    overfit_batches: Any = 0.0


@dataclass
class RunConfig:
    """Where the run writes and what it keeps."""

    dir: str | None = None  # None: <root>/<experiment>-<timestamp>
    root: str = "runs"
    # sample grid every N epochs; None: on the wall-clock cadence of `write_every_s` (and
    # always at the end)
    sample_every_n_epochs: int | None = None
    # periodic last.ckpt and sample grids at an epoch end once this many seconds have passed
    # since the last one, or 50x the last one's cost if longer: they cost < 2 % of any run
    write_every_s: float = 60.0
    threads: int | None = None  # torch intra-op threads; None: lit_gen.run.threads' policy
    n_grid: int = 64  # images in a sample grid (size of the fixed-noise buffer)
    monitor: str | None = None  # metric for best checkpoints, e.g. "val/elbo" or "fid"
    monitor_mode: str = "min"
    save_top_k: int = 1
    # a non-finite loss, gradient or parameter: stop (exit 3, last finite checkpoint kept)
    # or skip_step (drop that optimizer step, count it in train/skipped_steps)
    on_nonfinite: str = "stop"


@dataclass
class WandbConfig:
    enabled: bool = False
    project: str = "lit_gen"
    entity: str | None = None
    mode: str | None = None  # online | offline | None: offline when no credentials
    tags: list[str] = field(default_factory=list)
    group: str | None = None


@dataclass
class LoggerConfig:
    wandb: WandbConfig = field(default_factory=WandbConfig)


@dataclass
class MetricsConfig:
    """Sample-quality and likelihood metrics during and after training (docs/evaluation.md).

    Image metrics (isc, fid, kid, prc) run through torch-fidelity on `num_samples` generated
    images against the `real_split` images; `toy` on `toy_samples` points of ring2d/grid2d;
    `likelihood` (models with `elbo` / `iwae_log_likelihood`) on `likelihood_split`.
    """

    names: list[str] = field(default_factory=list)  # isc, fid, kid, prc (images); toy; likelihood
    every_n_epochs: int | None = None  # None: only at the end
    # the evaluations every_n_epochs compute only these (a subset of names: e.g. [fid] for
    # the curve); the last epoch's computes all of names. None: all of names every time
    curve_names: list[str] | None = None
    num_samples: int = 10000
    real_split: str = "train"  # train | val | test
    batch_size: int = 256  # images per generator / extractor forward pass
    feature_extractor: str = "inception-v3-compat"  # or "classifier"
    inception_weights: str | None = None  # local weights file for machines without internet
    classifier_ckpt: str | None = None  # domain classifier for feature_extractor=classifier
    cache_dir: str | None = None  # real-statistics cache (None: torch-fidelity's default)
    isc_splits: int = 10
    kid_subsets: int = 100
    kid_subset_size: int = 1000  # capped at the number of generated / real images
    prc_neighborhood: int = 3
    toy_samples: int = 2500
    iwae_k: int = 5000  # importance samples for the VAE log-likelihood estimate
    likelihood_split: str = "test"  # train | val | test
    likelihood_limit: int | None = None  # use only the first N examples of the split
    likelihood_batch_size: int = 16  # examples per elbo / iwae_log_likelihood call
    # feature extractors other than Inception / classifier (dinov2-vit-*-14, clip-vit-b-32,
    # vgg16): their local weights file (None: the torch.hub checkpoints folder)
    extractor_weights: str | None = None
    extractor_dtype: str | None = None  # float32 | float64 inside the extractor (None: float32)
    dc_neighborhood: int = 5  # k of density / coverage (Naeem et al. 2020)
    memorization_split: str = "test"  # held-out real images of the data-copying test
    memorization_cells: int = 10  # k-means cells of the training features (Meehan et al. 2020)
    memorization_min_cell: int = 20  # generated samples a cell needs to be scored
    fd_inf_points: int = 5  # sample sizes of the FD-infinity fit (Chong & Forsyth 2020)
    fd_inf_min_samples: int | None = None  # smallest of them (None: num_samples // 5)
    # `classes`: a class is covered when its share of the samples is >= this x its real share
    class_min_share: float = 0.1
    recon_split: str = "test"  # images encoded and decoded for recon_fid (autoencoders)
    latent_sampler: str = "prior"  # autoencoders: prior | gmm | two_stage (lit_gen.metrics.latent_samplers)
    latent_sampler_file: str | None = None  # the fitted sampler (None: next to the checkpoint)
    # autoencoders: the image metrics of metrics.names (none: nothing) once more with each of
    # these ex-post samplers, refitted at each evaluation, as "<sampler>/<key>" (gmm/fid, ...),
    # so a table shows prior vs gmm (metrics.latent_sampler itself is not repeated); the AE
    # experiments of the benchmark tables set [gmm]
    also_latent_samplers: list[str] = field(default_factory=list)


@dataclass
class Config:
    seed: int = 0
    # train one member per seed as one vectorized ensemble (lit_gen/nets/members.py): each
    # member has its own init, data, shuffling and noise; `seed` seeds what they share
    seeds: list[int] | None = None
    experiment: str | None = None  # set from the last --config file's name when null
    resume: str | None = None  # "last" or a checkpoint path
    # what a resume may change (lit_gen.run.resume): "refuse" anything that defines the run
    # (model, data, batch size, optimizer, seed), or "allow" it, applied and recorded
    resume_overrides: str = "refuse"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    run: RunConfig = field(default_factory=RunConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)


def _describe(err: OmegaConfBaseException, source: str) -> str:
    key = getattr(err, "full_key", None) or "?"
    msg = str(getattr(err, "msg", None) or err).splitlines()[0]
    if "not in struct" in msg or "Key '" in msg and "not in" in msg:
        parent = key.rsplit(".", 1)[0] if "." in key else ""
        node = OmegaConf.structured(Config)
        valid = ""
        try:
            sub = OmegaConf.select(node, parent) if parent else node
            if isinstance(sub, DictConfig):
                valid = f" Valid keys{' under ' + repr(parent) if parent else ''}: {', '.join(sub.keys())}"
        except OmegaConfBaseException:
            pass
        return f"unknown config key '{key}' ({source}).{valid}"
    return f"invalid value for '{key}' ({source}): {msg}"


def normalize_overrides(args: list[str]) -> list[str]:
    """Accept `key=value`, `--key=value` (wandb `${args}`) and `++key=value` alike. `key=None`
    is `key=null`: a sweep file's null reaches the command line as Python's str(None), from
    wandb's agent and from lit_gen.sweep alike."""
    out = []
    for a in args:
        a = a.lstrip("+")
        if a.startswith("--"):
            a = a[2:]
        if "=" not in a:
            raise ConfigError(f"override '{a}' is not of the form key=value")
        key, value = a.split("=", 1)
        out.append(f"{key}=null" if value == "None" else a)
    return out


NET_KEYS = ("generator", "discriminator", "encoder")


def _reset_renamed_nets(cfg: DictConfig, update: DictConfig) -> None:
    """A net spec whose `name` changes is replaced whole, not merged key by key (the
    arguments of one net mean nothing to another)."""
    model = update.get("model") if isinstance(update, DictConfig) else None
    if not isinstance(model, DictConfig):
        return
    for net in NET_KEYS:
        new = model.get(net)
        old = cfg.model.get(net)
        if isinstance(new, DictConfig) and "name" in new and old is not None \
                and old.get("name") != new.get("name"):
            cfg.model[net] = {}


def _read_with_defaults(path: Path, seen: tuple[Path, ...]) -> list[tuple[str, DictConfig]]:
    """A yaml file preceded by the files its `defaults:` list names (relative to it)."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path.resolve() in seen:
        raise ConfigError(f"config file {path} includes itself through `defaults:`")
    try:
        file_cfg = OmegaConf.load(path)
    except Exception as err:  # yaml errors of every kind: name the file, no traceback
        raise ConfigError(f"cannot parse {path}: {str(err).splitlines()[0]}") from None
    if not isinstance(file_cfg, DictConfig):
        raise ConfigError(f"{path} must hold a mapping of config keys")
    out: list[tuple[str, DictConfig]] = []
    includes = file_cfg.pop("defaults", None) or []
    if isinstance(includes, str):
        includes = [includes]
    for inc in includes:
        out += _read_with_defaults(path.parent / str(inc), (*seen, path.resolve()))
    out.append((str(path), file_cfg))
    return out


def _check_scannable(item: str) -> None:
    """An override value YAML cannot read (`x`, @home, ...) is a ConfigError that says how
    to quote it, not a yaml traceback."""
    key, value = item.split("=", 1)
    try:
        OmegaConf.from_dotlist([f"value={value}"])
    except yaml.YAMLError as err:
        reason = str(getattr(err, "problem", None) or err).splitlines()[0]
        raise ConfigError(f"override '{item}': YAML cannot read the value {value!r} ({reason}); "
                          f"quote it as a string, e.g. {key}=\"'{value}'\"") from None
    except OmegaConfBaseException:
        pass  # reported with its key by compose()


def compose(config_files: list[str] | tuple[str, ...] = (), overrides: list[str] = ()) -> DictConfig:
    """Defaults <- each yaml file in order <- dotlist overrides, checked against the schema
    (keys and types). `lit_gen.validation.load` adds the checks that need the registries."""
    cfg = OmegaConf.structured(Config)
    for path in config_files:
        for source, file_cfg in _read_with_defaults(Path(path), ()):
            try:
                _reset_renamed_nets(cfg, file_cfg)
                cfg = OmegaConf.merge(cfg, file_cfg)
            except OmegaConfBaseException as err:
                raise ConfigError(_describe(err, source)) from None
    dotlist = normalize_overrides(list(overrides))
    for item in dotlist:
        _check_scannable(item)
    try:
        _reset_renamed_nets(cfg, OmegaConf.from_dotlist(dotlist))
        for item in dotlist:
            # one at a time with update(): keys may index lists (model.penalties.0.weight=5)
            key, value = item.split("=", 1)
            parsed = OmegaConf.from_dotlist([f"value={value}"])._get_node("value")
            parsed = OmegaConf.to_container(parsed) if isinstance(
                parsed, DictConfig | ListConfig) else parsed._value()
            OmegaConf.update(cfg, key, parsed, merge=True)
    except OmegaConfBaseException as err:
        raise ConfigError(_describe(err, "command line")) from None
    except (TypeError, IndexError, ValueError) as err:
        raise ConfigError(f"invalid override in '{' '.join(dotlist)}': {err}") from None
    if cfg.experiment is None:
        cfg.experiment = Path(config_files[-1]).stem if config_files else "default"
    return cfg


def to_container(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def from_container(data: dict[str, Any]) -> DictConfig:
    """Rebuild a validated config from a plain dict (e.g. the one stored in a checkpoint)."""
    cfg = OmegaConf.structured(Config)
    try:
        return OmegaConf.merge(cfg, OmegaConf.create(data))
    except OmegaConfBaseException as err:
        raise ConfigError(_describe(err, "stored config")) from None


def schema_fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def defaults_yaml() -> str:
    """The text of conf/defaults.yaml: every key with its default."""
    return ("# Every key and its default, generated by `python -m lit_gen.config > conf/defaults.yaml`\n"
            "# (a test keeps it equal to lit_gen/config.py). Experiment files hold only what differs.\n"
            + OmegaConf.to_yaml(OmegaConf.structured(Config)))


if __name__ == "__main__":
    print(defaults_yaml(), end="")
