"""The Lightning side of the in-process benchmark: lit_gen's own model and Trainer (what
`lit_gen.fit` builds), and the plain step in a bare LightningModule (Lightning's floor)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from lit_gen.bench.speed.measure import StepWindow, quiet
from lit_gen.bench.speed.plain import PlainSetup, plain_batches, plain_setup
from lit_gen.bench.speed.settings import MODEL_CONFIGS, Settings, TrainCase

ROOT = Path(__file__).resolve().parents[3]


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
    """The validated run config of an in-process case (conf/model/<model>.yaml)."""
    from lit_gen import validation

    overrides = case_overrides(case, s, device) + list(extra)
    if case.model != "vae":
        overrides += s.net_overrides
    return validation.load([str(ROOT / "conf" / "model" / MODEL_CONFIGS[case.model])], overrides)


def load_data(cfg):
    from lit_gen.data import build_datamodule

    dm = build_datamodule(cfg.data, seed=cfg.seed)
    dm.setup()
    return dm


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


class _Batches:
    """The plain loop's batches as an iterable Lightning can take as a train dataloader."""

    def __init__(self, dm, s: Settings, case: TrainCase, device: torch.device):
        self.args = (dm, s, case, device)
        self.n = len(dm.x_train) // s.batch_size

    def __iter__(self):
        return plain_batches(*self.args)

    def __len__(self) -> int:
        return self.n


def bare_module(setup: PlainSetup, log_every: int, channels_last: bool = False,
                on_batch_end: Callable[[int], None] | None = None):
    """The plain step in a bare LightningModule with manual optimization (`manual_backward`,
    Lightning's optimizer step), logging the loss to the host every `log_every` batches.

    A batch is (x, y), or with several plain steps per Lightning batch (x, y) of shape
    (K, B, ...): the K minibatches are stepped in turn (the "K steps per batch" option for
    tiny nets, which pays Lightning's per-batch cost once per K steps)."""
    import lightning as L

    class Bare(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False
            self.nets = torch.nn.ModuleList(setup.nets)
            self.host_logs: list[float] = []
            self.steps = 0

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

            xs = batch[0]
            for x in (xs.unbind(0) if xs.ndim > len(setup.shape) + 1 else (xs,)):
                if channels_last and x.ndim == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
                loss = setup.step(self.steps, x, update)
                self.steps += 1
                if self.steps % log_every == 0:
                    self.host_logs.append(loss.item())

        def on_train_batch_end(self, outputs, batch, batch_idx):
            if on_batch_end is not None:
                on_batch_end(batch_idx)

    return Bare()


def run_bare(cfg, s: Settings, case: TrainCase, device: torch.device, dm) -> dict[str, float]:
    """The floor of any Lightning training: the plain step (same nets, losses, optimizers and
    batches) in a bare LightningModule (`bare_module`), no callbacks, logger or
    checkpointing. lit_gen / this ratio is what lit_gen adds to Lightning; this / plain is
    Lightning's own cost.

    Counterpart of `run_lit` (lit_gen's module in the same Trainer) and of the plain loop
    (`plain.timed_loop`) whose step it runs."""
    import lightning as L

    setup = plain_setup(cfg, s, device, tuple(dm.info().shape))
    window = StepWindow(s.warmup, s.steps, device)
    log_every = cfg.trainer.log_every_n_steps
    module = bare_module(setup, log_every, s.channels_last, window.batch_end)
    with tempfile.TemporaryDirectory() as d, quiet():
        trainer = L.Trainer(default_root_dir=d, logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False,
                            accelerator=device.type, devices=1, precision=s.precision,
                            max_epochs=1, limit_train_batches=window.total, limit_val_batches=0,
                            num_sanity_val_steps=0, log_every_n_steps=log_every)
        trainer.fit(module, train_dataloaders=_Batches(dm, s, case, device))
    return window.seconds
