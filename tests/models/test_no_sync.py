"""No host-device synchronisation inside a training step, for one experiment of every model.

On CPU a sync cannot be observed, so the test watches for what causes one on a GPU: lit_gen
code that reads a tensor on the host (`.item()`, `.cpu()`, `.tolist()`, `.numpy()`, `bool()`,
`float()`, `int()`), creates a tensor from host data on the model's device
(`torch.tensor(..., device=...)`), or calls `self.log` on a step whose logs Lightning does not
write (Lightning turns progress-bar values into Python numbers after every such step).
"""

from __future__ import annotations

import sys
import traceback

import pytest
import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.strategies import Strategy

from lit_gen import validation
from tests.conftest import EXPERIMENTS, ROOT, fit, tiny_overrides

LIT_GEN = str(ROOT / "lit_gen")
NO_METRICS = ["metrics.names=[]"]  # training steps only (a missing classifier fails validation)
HOST_READS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__")
#: lit_gen functions that read a tensor only when it is on the CPU (no device to wait for):
#: the non-finite guard's per-step loss check (lit_gen.models.base)
HOST_ONLY = ("cpu_loss_is_finite",)


def one_experiment_per_model() -> list:
    """An experiment file for every model name and set of D penalties in conf/experiment
    (digits ones first)."""
    by_model: dict[tuple, list] = {}
    for path in EXPERIMENTS:
        cfg = validation.load([str(path)], NO_METRICS)
        key = (cfg.model.name, tuple(sorted(p["name"] for p in cfg.model.penalties)))
        by_model.setdefault(key, []).append(path)
    return [min(paths, key=lambda p: ("_digits" not in p.name, p.name))
            for _, paths in sorted(by_model.items())]


class SyncWatch:
    """Records host reads made by lit_gen code while a training step runs."""

    def __init__(self):
        self.inside = False
        self.steps = 0
        self.found: list[str] = []

    def record(self, what: str) -> None:
        caller = sys._getframe(2)
        if caller.f_code.co_name in HOST_ONLY:
            return
        if self.inside and caller.f_code.co_filename.startswith(LIT_GEN):
            where = "".join(traceback.format_stack(caller, limit=1)).strip()
            self.found.append(f"{what} at {where}")

    def install(self, monkeypatch) -> None:
        for name in HOST_READS:
            original = getattr(torch.Tensor, name)

            def wrapped(t, *args, _name=name, _original=original, **kwargs):
                self.record(f"Tensor.{_name}")
                return _original(t, *args, **kwargs)

            monkeypatch.setattr(torch.Tensor, name, wrapped)
        for name in ("tensor", "as_tensor"):
            original = getattr(torch, name)

            def factory(*args, _name=name, _original=original, **kwargs):
                data = args[0] if args else kwargs.get("data")
                if kwargs.get("device") is not None and not isinstance(data, torch.Tensor):
                    self.record(f"torch.{_name}(<host data>, device=...)")
                return _original(*args, **kwargs)

            monkeypatch.setattr(torch, name, factory)
        original_log = LightningModule.log

        def log(module, name, value, *args, **kwargs):
            if self.inside:
                self.found.append(f"self.log({name!r}) on a step whose logs are not written")
            return original_log(module, name, value, *args, **kwargs)

        monkeypatch.setattr(LightningModule, "log", log)
        original_step = Strategy.training_step

        def training_step(strategy, *args, **kwargs):
            self.inside = True
            try:
                return original_step(strategy, *args, **kwargs)
            finally:
                self.inside = False
                self.steps += 1

        monkeypatch.setattr(Strategy, "training_step", training_step)


@pytest.mark.parametrize("exp", one_experiment_per_model(), ids=lambda p: p.stem)
def test_training_step_never_waits_for_the_device(exp, tmp_path, monkeypatch):
    watch = SyncWatch()
    watch.install(monkeypatch)
    # 3 batches, none of them a logging step: nothing in the step may reach the host
    fit([exp], tiny_overrides(tmp_path / "r") + NO_METRICS + [
        "trainer.limit_train_batches=3", "trainer.log_every_n_steps=1000"])
    assert watch.steps == 3
    assert watch.found == [], "\n".join(watch.found)


def test_a_batch_group_never_waits_for_the_device(tmp_path, monkeypatch):
    """data.group_batches: the K batches of a Lightning batch are as asynchronous as K
    Lightning batches."""
    watch = SyncWatch()
    watch.install(monkeypatch)
    fit([ROOT / "conf" / "experiment" / "wgan_gp_grid2d.yaml"], tiny_overrides(tmp_path / "r") + NO_METRICS + [
        "trainer.limit_train_batches=6", "trainer.log_every_n_steps=1000", "data.group_batches=3"])
    assert watch.steps == 2
    assert watch.found == [], "\n".join(watch.found)


def test_the_watch_sees_a_host_read(tmp_path, monkeypatch):
    """The same watch flags a model that logs a Python float every step (a copy to the
    device) and one that calls .item() in its step: the test above can fail."""
    from lit_gen.models.adversarial import AdversarialModule

    watch = SyncWatch()
    watch.install(monkeypatch)
    original = AdversarialModule.train_batch

    def step(module, batch, batch_idx):
        original(module, batch, batch_idx)
        module.log("bad", float(module.g_steps))
        if batch[0].sum() > 1e9:  # Tensor.__bool__ from lit_gen-like code: flagged below
            pass

    step.__code__ = step.__code__.replace(co_filename=str(ROOT / "lit_gen" / "models" / "fake.py"))
    monkeypatch.setattr(AdversarialModule, "train_batch", step)
    fit([ROOT / "conf" / "experiment" / "gan_ring2d.yaml"],
        tiny_overrides(tmp_path / "r") + ["trainer.limit_train_batches=2",
                                          "trainer.log_every_n_steps=1000"])
    assert sum("self.log('bad')" in f for f in watch.found) == 2
    assert sum("Tensor.__bool__" in f for f in watch.found) == 2


def test_log_steps_log_host_values(tmp_path, monkeypatch):
    """On the steps Lightning writes, the step values reach the loggers as host numbers at
    Lightning's step count; only epoch means go through `self.log` (as host tensors), so
    neither Lightning's per-step progress-bar conversion nor its result collection ever
    holds a device value from a training step."""
    from lightning.pytorch.loggers import CSVLogger

    seen, written = {}, []
    original_log = LightningModule.log
    original_write = CSVLogger.log_metrics

    def log(module, name, value, *args, **kwargs):
        seen[name] = value
        return original_log(module, name, value, *args, **kwargs)

    def log_metrics(logger, metrics, step=None):
        written.append((dict(metrics), step))
        return original_write(logger, metrics, step)

    monkeypatch.setattr(LightningModule, "log", log)
    monkeypatch.setattr(CSVLogger, "log_metrics", log_metrics)
    run = fit([ROOT / "conf" / "experiment" / "wgan_gp_ring2d.yaml"],
              tiny_overrides(tmp_path / "r") + ["trainer.log_every_n_steps=2", "model.n_critic=1"])
    train = {k: v for k, v in seen.items() if k.startswith("train/") or k == "g_step"}
    assert set(train) == {"train/d_adv_epoch", "train/d_fake_epoch", "train/d_loss_epoch",
                          "train/d_real_epoch", "train/g_loss_epoch", "train/penalty_gp_epoch"}
    assert all(isinstance(v, torch.Tensor) and v.device.type == "cpu" and v.ndim == 0
               for v in train.values())
    step_writes = [(m, step) for m, step in written if "train/d_loss_step" in m]
    assert {"train/d_loss_step", "train/g_loss_step", "train/penalty_gp_step", "g_step",
            "epoch"} <= set(step_writes[0][0])
    assert all(type(v) in (float, int) for m, _ in step_writes for v in m.values())
    import csv

    rows = list(csv.DictReader(open(run / "metrics.csv")))
    step_rows = [r for r in rows if r.get("train/d_loss_step")]
    assert [int(r["step"]) for r in step_rows] == [1, 3, 5]  # Lightning writes every 2nd batch
    assert [float(r["g_step"]) for r in step_rows] == [2.0, 4.0, 6.0]
    # the epoch means are written at Lightning's step count too: after the 6th batch
    epoch_rows = [r for r in rows if r.get("train/d_loss_epoch")]
    assert [int(r["step"]) for r in epoch_rows] == [5]
