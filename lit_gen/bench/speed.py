"""`python -m lit_gen.bench speed [--quick] [--out FILE]` (or `python -m lit_gen.bench.speed`):
is lit_gen as fast as plain PyTorch?

In one process, on whatever device is present (CUDA if available, else CPU), it measures:

- training throughput (real images/s) of lit_gen's DCGAN, WGAN-GP and VAE through the real
  `lightning.Trainer` + lit_gen modules (the loggers and callbacks `lit_gen.fit` uses),
  against a plain PyTorch loop written here with the same `lit_gen.nets` networks,
  `lit_gen.losses` losses and penalties, optimizers, batch size and data; both with the
  DataLoader path and with `data.on_device=true`. The ratio lit_gen / plain is the figure.
- FID throughput: `torch_fidelity.calculate_metrics` called directly, and lit_gen's metric
  code (when `lit_gen.metrics` provides it), first call and second call (real statistics
  cached), with the Inception extractor (random weights where the pretrained file is
  missing) and the domain-classifier extractor (when lit_gen provides one).
- peak memory: CPU RSS (Linux VmHWM, reset per measurement) and CUDA max_memory_allocated.

Each figure is the median over `--repeats` runs; lit_gen and plain runs alternate. Throughput
is timed over `--steps` batches after `--warmup` batches (from the end of one batch to the
end of another, with a device synchronisation at both ends), so start-up is excluded.
Targets are printed as PASS / FAIL (SKIP when not measurable, INFO when a figure has no
target on this device). See docs/performance.md.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from lit_gen.errors import ConfigError, cli_main

ROOT = Path(__file__).resolve().parents[2]
MODEL_CONFIGS = {"dcgan": "dcgan.yaml", "wgan_gp": "wgan_gp.yaml", "vae": "vae.yaml"}
# the plain VAE loop's settings when this checkout has no `vae` model (conf/model/vae.yaml)
VAE_FALLBACK = {
    "name": "vae", "latent_dim": 16,
    "encoder": {"name": "mlp", "hidden": [512, 256], "activation": "relu"},
    "generator": {"name": "mlp", "hidden": [256, 512], "norm": "none", "out_activation": "none"},
    "g_optim": {"name": "adam", "lr": 1.0e-3, "betas": [0.9, 0.999]},
    "params": {"likelihood": "bernoulli"},
}
RATIO_TARGET = 0.95
FID_SPEEDUP_TARGET = 2.0
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"


@dataclass
class Settings:
    """What the benchmark measures; `--quick` swaps in QUICK."""

    models: list[str] = field(default_factory=lambda: ["dcgan", "wgan_gp", "vae"])
    sizes: list[int] = field(default_factory=lambda: [28, 32])
    data: list[str] = field(default_factory=lambda: ["synthetic", "digits"])
    batches: list[str] = field(default_factory=lambda: ["dataloader", "on_device"])
    batch_size: int = 64
    warmup: int = 3
    steps: int = 20
    repeats: int = 3
    precision: str = "32-true"
    compile: bool = False
    channels_last: bool = False
    fid_n: int = 10000
    fid_real: int = 50000
    fid_batch_size: int = 64
    extractors: list[str] = field(default_factory=lambda: ["inception", "classifier"])
    fid_repeats: int = 1
    fast_paths: bool = False
    mnist_root: str | None = None
    seed: int = 0
    skip_train: bool = False
    skip_fid: bool = False
    # "wall": wall-clock throughput; "process": images per second of this process's CPU time
    # (steadier on a shared CPU; meaningless for GPU work, which it does not count)
    clock: str = "wall"
    net_overrides: list[str] = field(default_factory=list)  # e.g. narrower nets for --quick
    # also time the plain step in a bare LightningModule (Lightning's floor; see run_lightning)
    lightning_floor: bool = True


QUICK = Settings(sizes=[28], data=["synthetic"], batch_size=16, warmup=1, steps=3, repeats=1,
                 fid_n=4, fid_real=8, fid_batch_size=16, extractors=["inception", "classifier"],
                 net_overrides=["model.generator.base_channels=16",
                                "model.discriminator.base_channels=16"])


# --- environment, timing, memory ------------------------------------------------------------
def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is visible; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be auto, cpu or cuda, got '{name}'")
    return torch.device(name)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(device: torch.device) -> dict[str, Any]:
    import lightning

    env = {"device": device.type, "cpu": cpu_name(), "cpu_threads": torch.get_num_threads(),
           "cpu_count": os.cpu_count(), "torch": torch.__version__,
           "lightning": lightning.__version__, "python": platform.python_version()}
    try:
        env["load_average_1min"] = os.getloadavg()[0]
    except OSError:
        pass
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
    return env


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepWindow:
    """Times batches warmup..warmup+steps-1: from the end of batch `warmup - 1` to the end of
    the last one, synchronising the device at both ends."""

    def __init__(self, warmup: int, steps: int, device: torch.device):
        if warmup < 1 or steps < 1:
            raise ConfigError("--warmup and --steps must be >= 1")
        self.warmup, self.steps, self.device = warmup, steps, device
        self.t0: tuple[float, float] | None = None
        self.t1: tuple[float, float] | None = None

    @property
    def total(self) -> int:
        return self.warmup + self.steps

    def batch_end(self, batch_idx: int) -> None:
        if batch_idx == self.warmup - 1:
            synchronize(self.device)
            self.t0 = (time.perf_counter(), time.process_time())
        elif batch_idx == self.total - 1:
            synchronize(self.device)
            self.t1 = (time.perf_counter(), time.process_time())

    @property
    def seconds(self) -> dict[str, float]:
        """{"wall": s, "process": s} of the window."""
        if self.t0 is None or self.t1 is None:
            raise RuntimeError(f"the timing window did not complete ({self.total} batches needed)")
        return {"wall": self.t1[0] - self.t0[0], "process": self.t1[1] - self.t0[1]}


def clock_now(clock: str, device: torch.device) -> float:
    """Seconds on the chosen clock ("wall" or "process" CPU time), after a device sync."""
    synchronize(device)
    return time.perf_counter() if clock == "wall" else time.process_time()


def _read_status_kb(key: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


@contextlib.contextmanager
def peak_memory(device: torch.device, out: dict) -> Iterator[None]:
    """Peak CPU RSS (MB) and peak CUDA allocation (MB) of the block, into `out`.

    On Linux the RSS high-water mark is reset first (/proc/self/clear_refs), so the figure
    is this block's peak; elsewhere it is the process's peak so far (resource.ru_maxrss).
    """
    gc.collect()
    reset = False
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        pass
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    yield
    hwm = _read_status_kb("VmHWM") if reset else None
    if hwm is None:
        import resource

        hwm = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # kB on Linux
    out["peak_rss_mb"] = round(hwm / 1024, 1)
    out["peak_rss_scope"] = "block" if reset else "process"
    if device.type == "cuda":
        out["gpu_peak_allocated_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def status(ok: bool | None) -> str:
    return "SKIP" if ok is None else ("PASS" if ok else "FAIL")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence Lightning's banners and known-harmless warnings during measured runs."""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric", "lightning")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        from lit_gen.run.trainer import HARMLESS_WARNINGS

        for pattern in (*HARMLESS_WARNINGS, ".*smaller than the logging interval.*",
                        ".*GPU available but not used.*", ".*precision.*", ".*TF32.*",
                        ".*Checkpoint directory.*exists and is not empty.*"):
            warnings.filterwarnings("ignore", pattern)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


# --- configs ------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainCase:
    model: str  # dcgan | wgan_gp | vae
    size: int  # 28 or 32 (28: 1 channel like MNIST, 32: 3 channels like CIFAR-10)
    data: str  # synthetic | digits | mnist
    batches: str  # dataloader | on_device

    @property
    def channels(self) -> int:
        return 1 if self.size == 28 or self.data != "synthetic" else 3

    @property
    def name(self) -> str:
        return f"{self.model}-{self.size}px-{self.data}-{self.batches}"


def vae_available() -> bool:
    from lit_gen.models import MODELS

    return "vae" in MODELS and (ROOT / "conf" / "model" / "vae.yaml").is_file()


def case_overrides(case: TrainCase, s: Settings, device: torch.device) -> list[str]:
    n_needed = (s.warmup + s.steps) * s.batch_size
    data = [f"data.name={case.data}", f"data.image_size={case.size}",
            f"data.batch_size={s.batch_size}", f"data.on_device={case.batches == 'on_device'}",
            "data.num_workers=0", "data.val_fraction=0.0"]
    if case.data == "synthetic":
        data += [f"data.channels={case.channels}", f"data.n_samples={n_needed}"]
    if case.data == "mnist":
        data += [f"data.root={s.mnist_root}", "data.download=false"]
    return data + [
        f"seed={s.seed}", "trainer.max_epochs=1", f"trainer.limit_train_batches={s.warmup + s.steps}",
        "trainer.limit_val_batches=0", "trainer.num_sanity_val_steps=0",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
        f"trainer.accelerator={device.type}", "trainer.devices=1",
        f"trainer.precision={s.precision}", f"model.compile={s.compile}",
        f"model.channels_last={s.channels_last}", "run.sample_every_n_epochs=1000",
        "run.monitor=null",  # no validation here: nothing to monitor (vae.yaml sets val/elbo)
    ]


def case_config(case: TrainCase, s: Settings, device: torch.device, extra: list[str] = ()):
    """The validated run config of a case, or for the VAE without a `vae` model in this
    checkout, an unvalidated config carrying the plain loop's settings."""
    from omegaconf import OmegaConf

    from lit_gen import config, validation

    overrides = case_overrides(case, s, device) + list(extra)
    if case.model != "vae":
        overrides += s.net_overrides
    if case.model == "vae" and not vae_available():
        cfg = OmegaConf.merge(OmegaConf.structured(config.Config),
                              OmegaConf.from_dotlist([o for o in overrides if o.startswith("data.")]))
        cfg.model = OmegaConf.merge(cfg.model, VAE_FALLBACK)
        cfg.data.binarize = True
        return cfg
    return validation.load([str(ROOT / "conf" / "model" / MODEL_CONFIGS[case.model])], overrides)


def load_data(cfg):
    from lit_gen.data import build_datamodule

    dm = build_datamodule(cfg.data, seed=cfg.seed)
    dm.setup()
    return dm


def steps_available(dm, s: Settings) -> int:
    n = len(dm.x_train) // s.batch_size
    return n


# --- the lit_gen side ---------------------------------------------------------------------
def run_lit(cfg, s: Settings, device: torch.device, dm=None) -> dict[str, float]:
    """Seconds for the timed window of one `trainer.fit` of the configured lit_gen model."""
    import lightning as L

    from lit_gen.models import build_model
    from lit_gen.run.trainer import build_callbacks, build_loggers, trainer_kwargs

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = dm or load_data(cfg)
    model = build_model(cfg, dm.info().as_dict())
    window = StepWindow(s.warmup, s.steps, device)
    # the window is read in the model's own batch-end hook (an instance attribute wrapping
    # it), which Lightning calls anyway: a timing callback would add its per-batch hook
    # dispatches to lit_gen's side only (the plain loop calls window.batch_end directly)
    model_batch_end = model.on_train_batch_end

    def on_train_batch_end(outputs, batch, batch_idx):
        model_batch_end(outputs, batch, batch_idx)
        window.batch_end(batch_idx)

    model.on_train_batch_end = on_train_batch_end
    with tempfile.TemporaryDirectory() as d, quiet():
        trainer = L.Trainer(default_root_dir=d, logger=build_loggers(cfg, Path(d)),
                            callbacks=build_callbacks(cfg, Path(d)), **trainer_kwargs(cfg, model))
        trainer.fit(model, datamodule=dm)
    return window.seconds


# --- the plain PyTorch side -----------------------------------------------------------------
class Amp:
    """autocast (+ GradScaler for fp16 on CUDA) as a plain loop would use it; on CPU,
    16-mixed becomes bf16-mixed as Lightning does."""

    def __init__(self, precision: str, device: torch.device):
        precision = str(precision)
        self.dtype = None
        if precision in ("bf16-mixed", "bf16"):
            self.dtype = torch.bfloat16
        elif precision in ("16-mixed", "16"):
            self.dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
        elif precision not in ("32-true", "32"):
            raise ConfigError(f"--precision: the plain loop supports 32-true, bf16-mixed and "
                              f"16-mixed, got '{precision}'")
        self.device = device
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype is torch.float16 else None

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def step(self, loss: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        opt.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            opt.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(opt)
            self.scaler.update()


def plain_batches(dm, s: Settings, case: TrainCase, device: torch.device):
    """The batches a plain loop draws: lit_gen's batched dataset through a DataLoader (page-
    locked on CUDA), or index into the training set held on the device."""
    from torch.utils.data import DataLoader

    from lit_gen.data.base import TensorPairDataset, collate_batched

    x, y = dm.x_train, dm.y_train
    if case.batches == "dataloader":
        yield from DataLoader(TensorPairDataset(x, y), batch_size=s.batch_size, shuffle=True,
                              drop_last=True, collate_fn=collate_batched,
                              pin_memory=device.type == "cuda")
        return
    xd, yd = x.to(device), y.to(device)
    perm = torch.randperm(len(xd), device=device)
    for i in range(len(xd) // s.batch_size):
        idx = perm[i * s.batch_size:(i + 1) * s.batch_size]
        yield xd[idx], yd[idx]


def prepare_nets(s: Settings, device: torch.device, *nets: torch.nn.Module) -> None:
    for net in nets:
        net.to(device)
        if s.channels_last:
            net.to(memory_format=torch.channels_last)
        if s.compile:
            net.compile()


def to_input(x: torch.Tensor, s: Settings, device: torch.device) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    if s.channels_last and x.ndim == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


class PlainSetup:
    """A hand-written training step: its nets, optimizers and `step(i, x, update) -> loss`,
    where `update(loss, opt)` zeroes, back-propagates and steps (the plain loop's `Amp.step`,
    or Lightning's manual optimization in the bare-Lightning reference)."""

    def __init__(self, nets: list[torch.nn.Module], optimizers: list[torch.optim.Optimizer],
                 step: Callable[[int, torch.Tensor, Callable], torch.Tensor]):
        self.nets, self.optimizers, self.step = nets, optimizers, step


def timed_loop(cfg, s: Settings, case: TrainCase, device: torch.device, dm,
               setup: PlainSetup) -> dict[str, float]:
    """Run the setup's step over the plain loop's batches inside the timing window, reading
    the loss on the host every `log_every_n_steps` batches as a user's loop would."""
    window = StepWindow(s.warmup, s.steps, device)
    log_every = cfg.trainer.log_every_n_steps
    amp = Amp(s.precision, device)
    host_logs = []
    for i, (x, _) in enumerate(plain_batches(dm, s, case, device)):
        with amp.autocast():
            loss = setup.step(i, to_input(x, s, device), amp.step)
        if (i + 1) % log_every == 0:
            host_logs.append(loss.item())
        window.batch_end(i)
        if i + 1 == window.total:
            break
    return window.seconds


def plain_gan(cfg, s: Settings, device: torch.device, dm) -> PlainSetup:
    """The GAN step a PyTorch user would write: one D step per batch (adversarial loss +
    penalties), a G step every n_critic batches with D frozen (called under autocast when
    the precision asks; penalties turn it off for their fp32 part as in lit_gen)."""
    from lit_gen.config import to_container
    from lit_gen.losses import LOSSES, PENALTIES
    from lit_gen.models.optim import build_optimizer
    from lit_gen.nets import build_net

    m = cfg.model
    shape = tuple(dm.info().shape)
    torch.manual_seed(cfg.seed)
    gen = build_net(m.generator, "generator", latent_dim=m.latent_dim, out_shape=shape)
    disc = build_net(m.discriminator, "discriminator", in_shape=shape)
    prepare_nets(s, device, gen, disc)
    opt_g = build_optimizer(gen.parameters(), to_container(m.g_optim), "model.g_optim")
    opt_d = build_optimizer(disc.parameters(), to_container(m.d_optim), "model.d_optim")
    adv = LOSSES.get(m.loss)
    penalties = [PENALTIES.get(p["name"])(**{k: v for k, v in p.items() if k != "name"})
                 for p in to_container(m.penalties)]

    def step(i: int, x: torch.Tensor, update: Callable) -> torch.Tensor:
        n = len(x)
        with torch.no_grad():
            fake = gen(torch.randn(n, m.latent_dim, device=device))
        d_real, d_fake = disc(x).flatten(), disc(fake).flatten()
        loss_d = adv.d_loss(d_real, d_fake)
        for p in penalties:
            term = p.loss(lambda v: disc(v).flatten(), x, fake)
            if term is not None:
                loss_d = loss_d + term
        update(loss_d, opt_d)
        for p in penalties:
            p.after_step(disc)
        if (i + 1) % m.n_critic == 0:
            disc.requires_grad_(False)
            loss_g = adv.g_loss(disc(gen(torch.randn(n, m.latent_dim, device=device))).flatten())
            update(loss_g, opt_g)
            disc.requires_grad_(True)
        return loss_d

    return PlainSetup([gen, disc], [opt_g, opt_d], step)


def plain_vae(cfg, s: Settings, device: torch.device, dm) -> PlainSetup:
    """A VAE step (Kingma & Welling 2014): Gaussian encoder with out_dim 2 * latent, decoder
    logits (Bernoulli) or mean (Gaussian with fixed std), one Adam over both nets; the same
    likelihoods and KL as lit_gen's VAE (lit_gen.losses.vae), computed in fp32."""
    from lit_gen.config import to_container
    from lit_gen.losses.vae import LIKELIHOODS, gaussian_kl, reparameterize
    from lit_gen.models.optim import build_optimizer
    from lit_gen.nets import build_net

    m = cfg.model
    params = dict(m.params or {})
    likelihood = LIKELIHOODS.get(params.get("likelihood", "bernoulli"))
    log_std = math.log(float(params.get("decoder_std", 0.1)))
    beta = float(params.get("beta", 1.0))
    shape = tuple(dm.info().shape)
    torch.manual_seed(cfg.seed)
    enc = build_net(m.encoder, "discriminator", in_shape=shape, out_dim=2 * m.latent_dim)
    dec = build_net(m.generator, "generator", latent_dim=m.latent_dim, out_shape=shape)
    prepare_nets(s, device, enc, dec)
    opt = build_optimizer([*enc.parameters(), *dec.parameters()], to_container(m.g_optim),
                          "model.g_optim")

    def step(i: int, x: torch.Tensor, update: Callable) -> torch.Tensor:
        mu, logvar = enc(x).float().chunk(2, dim=1)
        z = reparameterize(mu, logvar)
        out = dec(z)
        log_px = likelihood.log_prob(x.flatten(1).float(), out.flatten(1).float(), log_std)
        kl = gaussian_kl(mu, logvar)
        loss = -log_px.mean() + beta * kl.mean()
        update(loss, opt)
        return loss

    return PlainSetup([enc, dec], [opt], step)


def plain_setup(cfg, s: Settings, case: TrainCase, device: torch.device, dm) -> PlainSetup:
    fn = plain_vae if case.model == "vae" else plain_gan
    return fn(cfg, s, device, dm)


def run_plain(cfg, s: Settings, case: TrainCase, device: torch.device, dm) -> dict[str, float]:
    return timed_loop(cfg, s, case, device, dm, plain_setup(cfg, s, case, device, dm))


class _Batches:
    """The plain loop's batches as an iterable Lightning can take as a train dataloader."""

    def __init__(self, dm, s: Settings, case: TrainCase, device: torch.device):
        self.args = (dm, s, case, device)
        self.n = len(dm.x_train) // s.batch_size

    def __iter__(self):
        return plain_batches(*self.args)

    def __len__(self) -> int:
        return self.n


def run_lightning(cfg, s: Settings, case: TrainCase, device: torch.device, dm) -> dict[str, float]:
    """The floor of any Lightning training: the plain step (same nets, losses, optimizers and
    batches) in a bare LightningModule with manual optimization (`manual_backward`,
    Lightning's optimizer step), no callbacks, logger or checkpointing. lit_gen / this
    ratio is what lit_gen adds to Lightning; this / plain is Lightning's own cost."""
    import lightning as L

    setup = plain_setup(cfg, s, case, device, dm)
    window = StepWindow(s.warmup, s.steps, device)
    log_every = cfg.trainer.log_every_n_steps

    class Bare(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False
            self.nets = torch.nn.ModuleList(setup.nets)
            self.host_logs: list[float] = []

        def configure_optimizers(self):
            return setup.optimizers

        def training_step(self, batch, batch_idx):
            opts = self.optimizers()
            wrapped = {id(o.optimizer): o for o in (opts if isinstance(opts, list) else [opts])}

            def update(loss, opt):
                lopt = wrapped[id(opt)]
                lopt.zero_grad(set_to_none=True)
                self.manual_backward(loss)
                lopt.step()

            x = batch[0]
            if s.channels_last and x.ndim == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            loss = setup.step(batch_idx, x, update)
            if (batch_idx + 1) % log_every == 0:
                self.host_logs.append(loss.item())

        def on_train_batch_end(self, outputs, batch, batch_idx):
            window.batch_end(batch_idx)

    with tempfile.TemporaryDirectory() as d, quiet():
        trainer = L.Trainer(default_root_dir=d, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False,
                            accelerator=device.type, devices=1, precision=s.precision,
                            max_epochs=1, limit_train_batches=window.total, limit_val_batches=0,
                            num_sanity_val_steps=0, log_every_n_steps=log_every)
        trainer.fit(Bare(), train_dataloaders=_Batches(dm, s, case, device))
    return window.seconds


# --- training benchmark -------------------------------------------------------------------
def train_cases(s: Settings) -> list[TrainCase]:
    cases = []
    for model in s.models:
        for size in s.sizes:
            for data in s.data:
                if data != "synthetic" and size != 28:
                    continue  # the real sets here are grey digits: one real-data size
                if data == "mnist" and not s.mnist_root:
                    continue
                for batches in s.batches:
                    cases.append(TrainCase(model, size, data, batches))
    return cases


def bench_case(case: TrainCase, s: Settings, device: torch.device, log: Callable) -> dict:
    cfg = case_config(case, s, device)
    dm = load_data(cfg)
    row: dict[str, Any] = {"case": case.name, **asdict(case), "channels": case.channels,
                           "batch_size": s.batch_size, "warmup": s.warmup}
    steps = min(s.steps, steps_available(dm, s) - s.warmup)
    if steps < 1:
        row.update(status="SKIP", reason=f"{len(dm.x_train)} training images give fewer than "
                   f"{s.warmup + 1} batches of {s.batch_size}")
        return row
    s = replace(s, steps=steps)
    row["steps"] = steps
    lit_ok = case.model != "vae" or vae_available()
    sides = ["plain", "lightning", "lit_gen"] if s.lightning_floor else ["plain", "lit_gen"]
    runs: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    mem: dict[str, dict] = {side: {} for side in sides}
    run_side = {"plain": lambda: run_plain(cfg, s, case, device, dm),
                "lightning": lambda: run_lightning(cfg, s, case, device, dm),
                "lit_gen": lambda: run_lit(cfg, s, device, dm)}
    for r in range(s.repeats):
        # a different order each repeat, so no side always runs first (or after another)
        order = sides[r % len(sides):] + sides[:r % len(sides)]
        for side in (order if r % 2 == 0 else order[::-1]):
            if side == "lit_gen" and not lit_ok:
                continue
            m: dict = {}
            with peak_memory(device, m):
                secs = run_side[side]()
            runs[side].append({k: steps * s.batch_size / v for k, v in secs.items()})
            mem[side] = {k: max(v, mem[side].get(k, 0)) if isinstance(v, float) else v
                         for k, v in m.items()}
    for side, per_run in runs.items():
        if per_run:
            by_clock = {c: [r[c] for r in per_run] for c in ("wall", "process")}
            row[side] = {"images_per_s": round(median(by_clock[s.clock]), 2),
                         "wall_images_per_s": round(median(by_clock["wall"]), 2),
                         "process_images_per_s": round(median(by_clock["process"]), 2),
                         "runs": [round(v, 2) for v in by_clock[s.clock]], **mem[side]}
    if lit_ok:
        lit, plain = row["lit_gen"]["images_per_s"], row["plain"]["images_per_s"]
        row["ratio"] = round(lit / plain, 4)
        # per-batch time lit_gen spends beyond the plain loop (framework overhead estimate)
        row["overhead_ms_per_batch"] = round((s.batch_size / lit - s.batch_size / plain) * 1e3, 3)
        if "lightning" in row:
            bare = row["lightning"]["images_per_s"]
            # lit_gen vs the same step in a bare LightningModule: what lit_gen itself adds
            row["ratio_vs_lightning"] = round(lit / bare, 4)
            # the bare LightningModule vs the plain loop: Lightning's own per-batch cost
            row["lightning_ratio"] = round(bare / plain, 4)
        row["target"] = f"ratio >= {RATIO_TARGET}"
        row["status"] = status(row["ratio"] >= RATIO_TARGET)
    else:
        row["status"] = "SKIP"
        row["reason"] = "no `vae` model in this checkout (lit_gen/models/vae.py): plain loop only"
    log(f"  {case.name:<38} " + (f"lit_gen {row['lit_gen']['images_per_s']:>9.1f}  " if lit_ok else
                                 f"lit_gen {'-':>9}  ")
        + (f"lightning {row['lightning']['images_per_s']:>9.1f}  " if "lightning" in row else "")
        + f"plain {row['plain']['images_per_s']:>9.1f} img/s  {row['status']}")
    return row


def data_path_rows(train: list[dict], device: torch.device) -> list[dict]:
    """on_device vs DataLoader throughput of lit_gen for every case measured both ways."""
    by_key: dict[tuple, dict] = {}
    for row in train:
        if "lit_gen" in row:
            by_key.setdefault((row["model"], row["size"], row["data"]), {})[row["batches"]] = row
    out = []
    for (model, size, data), pair in by_key.items():
        if {"dataloader", "on_device"} <= set(pair):
            dl = pair["dataloader"]["lit_gen"]["images_per_s"]
            od = pair["on_device"]["lit_gen"]["images_per_s"]
            gpu = device.type == "cuda"
            out.append({"case": f"{model}-{size}px-{data}", "dataloader_images_per_s": dl,
                        "on_device_images_per_s": od, "speedup": round(od / dl, 4),
                        "target": "on_device > dataloader (GPU)" if gpu else "none on CPU",
                        "status": status(od > dl) if gpu else "INFO"})
    return out


FAST_PATHS = {
    "baseline": [],
    "channels_last": ["model.channels_last=true"],
    "adam_foreach": ["model.g_optim.foreach=true", "model.d_optim.foreach=true"],
    "adam_fused": ["model.g_optim.fused=true", "model.d_optim.fused=true"],
    "bf16-mixed": ["trainer.precision=bf16-mixed"],
    "16-mixed": ["trainer.precision=16-mixed"],
    "compile": ["model.compile=true"],
}


def bench_fast_paths(s: Settings, device: torch.device, log: Callable) -> list[dict]:
    """lit_gen throughput of DCGAN and WGAN-GP at 32 px with each switch on, vs none."""
    rows = []
    for model in ("dcgan", "wgan_gp"):
        case = TrainCase(model, 32, "synthetic", "on_device")
        base = None
        for name, extra in FAST_PATHS.items():
            if name == "16-mixed" and device.type != "cuda":
                rows.append({"case": f"{model}-32px", "switch": name, "status": "SKIP",
                             "reason": "Lightning runs 16-mixed as bf16-mixed on CPU (see the "
                                       "bf16-mixed row)"})
                continue
            cfg = case_config(case, s, device, extra)
            if name == "compile":
                # compile happens in the first D step and the first G step (batch n_critic):
                # keep both, and the recompiles they trigger, out of the timed window
                s_run = replace(s, warmup=max(s.warmup, 2 * cfg.model.n_critic + 1))
                cfg = case_config(case, s_run, device, extra)  # enough data for the warm-up
            else:
                s_run = s
            dm = load_data(cfg)
            ips = [s.steps * s.batch_size / run_lit(cfg, s_run, device, dm)[s.clock]
                   for _ in range(s.repeats)]
            value = median(ips)
            base = value if name == "baseline" else base
            rows.append({"case": f"{model}-32px", "switch": name, "overrides": extra,
                         "images_per_s": round(value, 2),
                         "speedup": round(value / base, 4) if base else None, "status": "INFO"})
            log(f"  {model}-32px {name:<14} {value:>9.1f} img/s")
    return rows


# --- FID benchmark --------------------------------------------------------------------------
class UInt8Images(torch.utils.data.Dataset):
    """uint8 (N, 3, H, W) images as torch-fidelity expects them."""

    def __init__(self, x: torch.Tensor):
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


def to_uint8_rgb(x: torch.Tensor) -> torch.Tensor:
    x = ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()
    return (x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x).contiguous()


def inception_weights(tmp: Path, seed: int) -> tuple[str, str]:
    """(path, kind): torch-fidelity's pretrained Inception file when this machine has it,
    else a random state dict (He-normal convolutions, so features neither vanish nor blow
    up) with the same architecture and cost."""
    hub = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    if hub.is_file():
        return str(hub), "pretrained"
    from unittest import mock

    import torch_fidelity.feature_extractor_inceptionv3 as fe

    # the constructor always loads weights: build the architecture without them
    with mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: {}), \
            mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict",
                              lambda self, *a, **k: None):
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in net.modules():
            if isinstance(mod, torch.nn.Conv2d | torch.nn.Linear):
                w = mod.weight
                w.copy_(torch.randn(w.shape, generator=gen) * math.sqrt(2.0 / w[0].numel()))
    path = tmp / "inception-random.pth"
    torch.save(net.state_dict(), path)
    return str(path), "random (pretrained weights not on this machine)"


def classifier_weights(tmp: Path, shape: tuple[int, ...], seed: int) -> tuple[str | None, str]:
    """A domain-classifier file with random weights, via lit_gen's own classifier module."""
    try:
        from lit_gen.metrics.extractors import ClassifierExtractor  # noqa: F401
        from lit_gen.nets.classifier import DomainClassifier, save_classifier
    except ImportError as err:
        return None, f"lit_gen has no domain classifier in this checkout ({err.name})"
    torch.manual_seed(seed)
    net = DomainClassifier(shape, 10)
    path = tmp / "classifier-random.pt"
    save_classifier(path, net, "cnn", {}, data={"name": "synthetic"}, test_accuracy=None)
    return str(path), "random"


def fidelity_direct(fake_u8, real_u8, extractor: str, weights: str, layer: str, cache_root: str,
                    cache_name: str, device: torch.device, batch_size: int) -> float:
    import torch_fidelity

    out = torch_fidelity.calculate_metrics(
        input1=UInt8Images(fake_u8), input2=UInt8Images(real_u8), fid=True,
        feature_extractor=extractor, feature_extractor_weights_path=weights,
        feature_layer_fid=layer, cache=True, cache_root=cache_root, input2_cache_name=cache_name,
        cuda=device.type == "cuda", batch_size=batch_size, verbose=False, save_cpu_ram=True)
    return float(out[torch_fidelity.KEY_METRIC_FID])


def lit_gen_fid(s: Settings, dm, extractor: str, weights: str, cache_dir: str,
                device: torch.device) -> tuple[Callable[[torch.Tensor], float] | None, str]:
    """A function samples -> FID through lit_gen's own metric code (one evaluator, as the
    training callback keeps one), or None and the reason it is not available."""
    try:
        from lit_gen.metrics.evaluator import Evaluator
    except ImportError as err:
        return None, f"lit_gen.metrics has no evaluator in this checkout ({err.name})"
    from lit_gen import validation

    overrides = ["metrics.names=[fid]", f"metrics.num_samples={s.fid_n}",
                 f"metrics.batch_size={s.fid_batch_size}", f"metrics.cache_dir={cache_dir}",
                 "data.name=synthetic"]
    if extractor == "inception":
        overrides += ["metrics.feature_extractor=inception-v3-compat",
                      f"metrics.inception_weights={weights}"]
    else:
        overrides += ["metrics.feature_extractor=classifier", f"metrics.classifier_ckpt={weights}"]
    cfg = validation.load([], overrides)
    evaluator = Evaluator(cfg.metrics, dm, seed=s.seed)

    def fid(samples: torch.Tensor) -> float:
        values, _ = evaluator.image_metrics(samples, device)
        return float(values["fid"])

    return fid, "lit_gen.metrics.evaluator.Evaluator.image_metrics"


def bench_fid(s: Settings, device: torch.device, log: Callable) -> list[dict]:
    from lit_gen import validation
    from lit_gen.models import build_model

    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cfg = validation.load([str(ROOT / "conf" / "model" / "dcgan.yaml")], [
            "data.name=synthetic", "data.image_size=28", "data.channels=1",
            f"data.n_samples={s.fid_real}", "data.val_fraction=0.0", f"seed={s.seed}"])
        dm = load_data(cfg)
        real_u8 = to_uint8_rgb(dm.x_train)
        model = build_model(cfg, dm.info().as_dict()).to(device)
        torch.manual_seed(s.seed)
        t = time.perf_counter()
        samples = torch.cat([model.sample(min(500, s.fid_n - i)).cpu()
                             for i in range(0, s.fid_n, 500)])
        gen_s = time.perf_counter() - t
        for extractor in s.extractors:
            row: dict[str, Any] = {"extractor": extractor, "n_generated": s.fid_n,
                                   "n_real": len(real_u8), "generate_s": round(gen_s, 3),
                                   "clock": s.clock}
            if extractor == "inception":
                weights, kind = inception_weights(tmp, s.seed)
                fidelity_name, layer = "inception-v3-compat", "2048"
            elif extractor == "classifier":
                weights, kind = classifier_weights(tmp, tuple(dm.info().shape), s.seed)
                if weights is None:
                    rows.append({**row, "status": "SKIP", "reason": kind})
                    log(f"  fid/{extractor}: SKIP ({kind})")
                    continue
                from lit_gen.metrics.extractors import ClassifierExtractor

                fidelity_name, layer = ClassifierExtractor.fidelity_name, ClassifierExtractor.layers["fid"]
            else:
                raise ConfigError(f"--extractors: unknown '{extractor}'; valid: inception, classifier")
            row["weights"] = kind

            def direct(r: int, e=extractor, w=weights, f=fidelity_name, ly=layer):
                cache = str(tmp / f"cache-direct-{e}-{r}")  # fresh per repeat: first call misses
                return lambda x: fidelity_direct(to_uint8_rgb(x), real_u8, f, w, ly, cache,
                                                 f"bench-real-{e}", device, s.fid_batch_size)

            def through_lit_gen(r: int, e=extractor, w=weights):
                return lit_gen_fid(s, dm, e, w, str(tmp / f"cache-lit-{e}-{r}"), device)[0]

            paths = {"torch_fidelity": direct}
            _, how = lit_gen_fid(s, dm, extractor, weights, str(tmp / "probe"), device)
            if _ is not None:
                paths["lit_gen"] = through_lit_gen
            else:
                row["lit_gen"] = {"status": "SKIP", "reason": how}
            for name, factory in paths.items():
                firsts, seconds, values = [], [], []
                m: dict = {}
                for r in range(s.fid_repeats):
                    fid_fn = factory(r)
                    with peak_memory(device, m):
                        t = clock_now(s.clock, device)
                        v1 = fid_fn(samples)
                        t1 = clock_now(s.clock, device)
                        v2 = fid_fn(samples)
                        t2 = clock_now(s.clock, device)
                    firsts.append(t1 - t)
                    seconds.append(t2 - t1)
                    values += [v1, v2]
                first, second = median(firsts), median(seconds)
                row[name] = {"first_s": round(first, 3), "second_s": round(second, 3),
                             "speedup": round(first / second, 3),
                             "images_per_s_first": round((s.fid_n + len(real_u8)) / first, 2),
                             "images_per_s_second": round(s.fid_n / second, 2),
                             "fid": values[0], "fid_second_equal": values[0] == values[1], **m}
                log(f"  fid/{extractor}/{name:<15} first {first:8.2f} s  second {second:8.2f} s "
                    f" x{first / second:.2f}")
            judged = "lit_gen" if "first_s" in row.get("lit_gen", {}) else "torch_fidelity"
            row["judged_path"] = judged
            row["target"] = f"second call >= {FID_SPEEDUP_TARGET}x faster than the first"
            row["status"] = status(row[judged]["speedup"] >= FID_SPEEDUP_TARGET)
            if "first_s" in row.get("lit_gen", {}):
                row["lit_gen_vs_torch_fidelity_first"] = round(
                    row["torch_fidelity"]["first_s"] / row["lit_gen"]["first_s"], 3)
                row["fid_equal"] = math.isclose(row["lit_gen"]["fid"], row["torch_fidelity"]["fid"],
                                                rel_tol=1e-6, abs_tol=1e-9)
            rows.append(row)
    return rows


# --- report -----------------------------------------------------------------------------------
def summarize(result: dict) -> list[dict]:
    targets = []
    for row in result["train"]:
        targets.append({"check": f"train ratio {row['case']}", "value": row.get("ratio"),
                        "target": f">= {RATIO_TARGET}", "status": row["status"],
                        **({"reason": row["reason"]} if "reason" in row else {})})
    for row in result["fid"]:
        judged = row.get("judged_path")
        targets.append({"check": f"fid second-call speedup {row['extractor']}"
                        + (f" ({judged})" if judged else ""),
                        "value": row[judged]["speedup"] if judged else None,
                        "target": f">= {FID_SPEEDUP_TARGET}", "status": row["status"],
                        **({"reason": row["reason"]} if "reason" in row else {})})
    for row in result["data_paths"]:
        targets.append({"check": f"on_device vs dataloader {row['case']}", "value": row["speedup"],
                        "target": row["target"], "status": row["status"]})
    return targets


def format_report(result: dict) -> str:
    env = result["environment"]
    dev = env.get("gpu") or f"CPU {env['cpu']} ({env['cpu_threads']} threads)"
    st = result["settings"]
    lines = [f"lit_gen speed benchmark on {dev}; torch {env['torch']}, lightning {env['lightning']}",
             f"settings: batch {st['batch_size']}, {st['steps']} timed batches after "
             f"{st['warmup']}, median of {st['repeats']}, precision {st['precision']}, "
             f"{st['clock']} clock" + (f", nets {' '.join(st['net_overrides'])}"
                                       if st["net_overrides"] else ""), ""]
    if result["train"]:
        lines.append(f"{'training (real images/s)':<40}{'lit_gen':>10}{'L-bare':>10}{'plain':>10}"
                     f"{'ratio':>8}{'vs L':>8}{'L/plain':>8}{'ovh ms/b':>10}{'RSS MB':>9}  status")
        def fig(r: dict, side: str):
            v = r.get(side, {}).get("images_per_s")
            return "-" if v is None else v

        for r in result["train"]:
            rss = r.get("lit_gen", r.get("plain", {})).get("peak_rss_mb")
            lines.append(f"{r['case']:<40}{fig(r, 'lit_gen'):>10}{fig(r, 'lightning'):>10}"
                         f"{fig(r, 'plain'):>10}{r.get('ratio', '-'):>8}"
                         f"{r.get('ratio_vs_lightning', '-'):>8}{r.get('lightning_ratio', '-'):>8}"
                         f"{r.get('overhead_ms_per_batch', '-'):>10}"
                         f"{rss if rss is not None else '-':>9}  {r['status']}")
        lines.append("(ratio = lit_gen / plain, the target; vs L = lit_gen / the same step in a bare "
                     "LightningModule; L/plain = Lightning's own cost)")
        lines.append("")
    if result["data_paths"]:
        lines.append(f"{'data path (lit_gen images/s)':<40}{'loader':>10}{'device':>10}{'x':>8}")
        for r in result["data_paths"]:
            lines.append(f"{r['case']:<40}{r['dataloader_images_per_s']:>10}"
                         f"{r['on_device_images_per_s']:>10}{r['speedup']:>8}  {r['status']}")
        lines.append("")
    if result.get("fast_paths"):
        lines.append(f"{'fast path (lit_gen images/s)':<40}{'img/s':>10}{'x':>8}")
        for r in result["fast_paths"]:
            lines.append(f"{r['case'] + ' ' + r['switch']:<40}{r.get('images_per_s', '-'):>10}"
                         f"{r.get('speedup') or '-':>8}  {r['status']}")
        lines.append("")
    if result["fid"]:
        lines.append(f"{'FID (seconds, ' + st['clock'] + ' clock)':<40}{'first':>10}{'second':>10}{'x':>8}")
        for r in result["fid"]:
            for path in ("torch_fidelity", "lit_gen"):
                p = r.get(path, {})
                if "first_s" in p:
                    lines.append(f"{r['extractor'] + '/' + path:<40}{p['first_s']:>10}"
                                 f"{p['second_s']:>10}{p['speedup']:>8}")
                elif "reason" in p or "reason" in r:
                    lines.append(f"{r['extractor'] + '/' + path:<40}  SKIP: "
                                 f"{p.get('reason') or r.get('reason')}")
        lines.append(f"(FID on {result['settings']['fid_n']} generated vs "
                     f"{result['settings']['fid_real']} real images)")
        lines.append("")
    lines.append("targets:")
    for t in result["targets"]:
        value = "-" if t["value"] is None else t["value"]
        lines.append(f"  {t['status']:<5} {t['check']}: {value} (target {t['target']})"
                     + (f" [{t['reason']}]" if t.get("reason") else ""))
    return "\n".join(lines)


# --- command line ---------------------------------------------------------------------------
def _csv(kind):
    return lambda text: [kind(t) for t in text.split(",") if t.strip()]


def parse_args(argv: list[str] | None) -> tuple[Settings, argparse.Namespace]:
    p = argparse.ArgumentParser(prog="python -m lit_gen.bench.speed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes for a CI smoke test (< 2 min on 2 CPU cores)")
    p.add_argument("--out", default=None, help="write the results as JSON to this file")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--skip-train", action="store_true", default=None)
    p.add_argument("--skip-fid", action="store_true", default=None)
    p.add_argument("--models", type=_csv(str), help="dcgan,wgan_gp,vae")
    p.add_argument("--sizes", type=_csv(int), help="28,32")
    p.add_argument("--data", type=_csv(str), help="synthetic,digits[,mnist]")
    p.add_argument("--batches", type=_csv(str), help="dataloader,on_device")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--warmup", type=int)
    p.add_argument("--steps", type=int)
    p.add_argument("--repeats", type=int)
    p.add_argument("--precision", help="32-true | bf16-mixed | 16-mixed (both sides)")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile (both sides)")
    p.add_argument("--channels-last", action="store_true", default=None, help="both sides")
    p.add_argument("--fid-n", type=int, help="generated images per FID (default 10000)")
    p.add_argument("--fid-real", type=int, help="real images (default 50000, a full train split)")
    p.add_argument("--fid-batch-size", type=int)
    p.add_argument("--fid-repeats", type=int)
    p.add_argument("--extractors", type=_csv(str), help="inception,classifier")
    p.add_argument("--fast-paths", action="store_true", default=None,
                   help="also time lit_gen with each fast-path switch on")
    p.add_argument("--mnist-root", help="a data.root holding MNIST/raw/ (adds real MNIST cases)")
    p.add_argument("--seed", type=int)
    p.add_argument("--clock", choices=("wall", "process"),
                   help="throughput by wall clock (default) or by this process's CPU time")
    p.add_argument("--net-overrides", type=_csv(str),
                   help="config overrides for the GAN nets of both sides, comma-separated")
    p.add_argument("--no-lightning-floor", dest="lightning_floor", action="store_false",
                   default=None, help="skip the bare-LightningModule reference runs")
    args = p.parse_args(argv)
    s = replace(QUICK) if args.quick else Settings()
    for f in ("models", "sizes", "data", "batches", "batch_size", "warmup", "steps", "repeats",
              "precision", "compile", "channels_last", "fid_n", "fid_real", "fid_batch_size",
              "fid_repeats", "extractors", "fast_paths", "mnist_root", "seed", "skip_train",
              "skip_fid", "clock", "net_overrides", "lightning_floor"):
        value = getattr(args, f)
        if value is not None:
            setattr(s, f, value)
    if s.mnist_root and "mnist" not in s.data:
        s.data = [*s.data, "mnist"]
    bad = [m for m in s.models if m not in MODEL_CONFIGS]
    if bad:
        raise ConfigError(f"--models: unknown '{bad[0]}'; valid: {', '.join(MODEL_CONFIGS)}")
    bad = [b for b in s.batches if b not in ("dataloader", "on_device")]
    if bad:
        raise ConfigError(f"--batches: unknown '{bad[0]}'; valid: dataloader, on_device")
    bad = [d for d in s.data if d not in ("synthetic", "digits", "mnist")]
    if bad:
        raise ConfigError(f"--data: unknown '{bad[0]}'; valid: synthetic, digits, mnist")
    for name in ("batch_size", "warmup", "steps", "repeats", "fid_n", "fid_real",
                 "fid_batch_size", "fid_repeats"):
        if getattr(s, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1")
    return s, args


def run(s: Settings, device: torch.device, log: Callable = print) -> dict:
    t_start = time.perf_counter()
    result: dict[str, Any] = {"version": 1, "environment": environment(device),
                              "settings": asdict(s), "train": [], "data_paths": [],
                              "fast_paths": [], "fid": []}
    if s.models and not s.skip_train:
        log("training throughput:")
        for case in train_cases(s):
            result["train"].append(bench_case(case, s, device, log))
        result["data_paths"] = data_path_rows(result["train"], device)
    if s.fast_paths:
        log("fast paths:")
        result["fast_paths"] = bench_fast_paths(s, device, log)
    if s.extractors and not s.skip_fid:
        log("FID:")
        result["fid"] = bench_fid(s, device, log)
    result["targets"] = summarize(result)
    result["wall_s"] = round(time.perf_counter() - t_start, 1)
    return result


@cli_main
def main(argv: list[str] | None = None) -> int:
    s, args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    os.environ.setdefault("WANDB_MODE", "offline")
    result = run(s, device, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(format_report(result))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
