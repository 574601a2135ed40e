"""What keeps lit_gen's per-batch cost low, checked for behaviour (not timing): one grouped
callback, step values straight to the loggers, the fast batch transfer, cheap sums."""

from __future__ import annotations

import csv
from collections import namedtuple

import lightning as L
import pytest
import torch

from lit_gen import validation
from lit_gen.callbacks import CallbackGroup, RunCheckpoint, StepProgressBar
from lit_gen.callbacks.group import HOOKS
from lit_gen.errors import ConfigError
from lit_gen.models.base import EpochSums
from tests.conftest import ROOT, fit, tiny_overrides

RING = ROOT / "conf" / "experiment" / "wgan_gp_ring2d.yaml"


class Recorder(L.Callback):
    def __init__(self, name, calls):
        self.name, self.calls = name, calls

    def on_train_epoch_end(self, trainer, pl_module):
        self.calls.append((self.name, "on_train_epoch_end"))


class BatchRecorder(Recorder):
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.calls.append((self.name, "on_train_batch_end", batch_idx))


class Stateful(L.Callback):
    def __init__(self):
        self.count = 0

    def state_dict(self):
        return {"count": self.count}

    def load_state_dict(self, state):
        self.count = state["count"]


def test_group_dispatches_each_hook_to_the_members_that_define_it_in_order():
    calls = []
    a, b = Recorder("a", calls), BatchRecorder("b", calls)
    group = CallbackGroup([a, b])
    # only defined hooks become dispatchers; the rest stay Lightning's no-op
    assert "on_train_epoch_end" in vars(group) and "on_train_batch_end" in vars(group)
    assert "on_before_backward" not in vars(group) and "on_train_batch_start" not in vars(group)
    assert "on_train_epoch_end" in HOOKS and "setup" in HOOKS and "state_dict" not in HOOKS
    group.on_train_epoch_end(None, None)
    group.on_train_batch_end(None, None, None, None, 3)
    assert calls == [("a", "on_train_epoch_end"), ("b", "on_train_epoch_end"),
                     ("b", "on_train_batch_end", 3)]


def test_group_keeps_member_state_and_refuses_what_lightning_finds_by_type(tmp_path):
    s = Stateful()
    s.count = 7
    group = CallbackGroup([Recorder("a", []), s])
    assert group.state_dict() == {"Stateful": {"count": 7}}  # stateless members omitted
    fresh = Stateful()
    CallbackGroup([fresh]).load_state_dict(group.state_dict())
    assert fresh.count == 7
    for cb in (RunCheckpoint(dirpath=str(tmp_path)), StepProgressBar()):
        with pytest.raises(ValueError, match="must be passed to the Trainer"):
            CallbackGroup([cb])


def test_run_checkpoint_key_is_model_checkpoints(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    for kw in ({"monitor": None}, {"monitor": "val/elbo", "mode": "max"}):
        ours, theirs = RunCheckpoint(dirpath=str(tmp_path), **kw), ModelCheckpoint(dirpath=str(tmp_path), **kw)
        assert ours.state_key == theirs.state_key and ours.state_key.startswith("ModelCheckpoint{")
    assert (RunCheckpoint(dirpath=str(tmp_path), monitor="a").state_key
            != RunCheckpoint(dirpath=str(tmp_path), monitor="b").state_key)


def test_a_run_has_one_lit_gen_callback_and_resumes(tmp_path):
    from lit_gen.run.trainer import build_callbacks

    cfg = validation.load([str(RING)], tiny_overrides(tmp_path / "r") + ["run.monitor=train/d_loss_epoch"])
    callbacks = build_callbacks(cfg, tmp_path / "r")
    kinds = [type(c).__name__ for c in callbacks]
    assert kinds == ["CallbackGroup", "LastCheckpoint", "RunCheckpoint"]
    members = [type(c).__name__ for c in callbacks[0].callbacks]
    assert members == ["EpochSeeding", "SyncBuffers", "SampleGrids", "FinalMetrics", "DDPParameterCheck",
                       "Preemption"]
    # the grouped callbacks still do their work, and a resumed run continues from last.ckpt
    run = fit([RING], tiny_overrides(tmp_path / "r"))
    assert (run / "samples" / "samples_final.png").is_file() and (run / "metrics.json").is_file()
    run = fit([RING], tiny_overrides(tmp_path / "r", epochs=2) + ["resume=last"])
    import json

    assert json.loads((run / "metrics.json").read_text())["epoch"] == 2


def test_monitoring_a_step_value_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="train/d_loss_epoch"):
        validation.load([str(RING)], tiny_overrides(tmp_path) + ["run.monitor=train/d_loss_step"])


def test_progress_bar_shows_the_step_values(tmp_path):
    """The bar gets the logged step values marked for it (host floats), not the others."""
    seen = {}

    class Bar(StepProgressBar):
        def get_metrics(self, trainer, pl_module):
            items = super().get_metrics(trainer, pl_module)
            seen.update(items)
            return items

    from lit_gen import fit as fit_mod

    original = fit_mod.build_callbacks
    fit_mod.build_callbacks = lambda c, d: [Bar() if isinstance(cb, StepProgressBar) else cb
                                             for cb in original(c, d)]
    try:
        fit([ROOT / "conf" / "experiment" / "vae_digits.yaml"],
            tiny_overrides(tmp_path / "r") + ["trainer.enable_progress_bar=true",
                                              "trainer.log_every_n_steps=2", "metrics.names=[]"])
    finally:
        fit_mod.build_callbacks = original
    assert {"train/elbo_step", "train/kl_step", "g_step"} <= set(seen)
    assert "train/recon_step" not in seen  # logged, not marked for the bar
    assert isinstance(seen["train/elbo_step"], float)
    assert seen["g_step"] == 6 and isinstance(seen["g_step"], int)  # the last logging step of 6


def test_step_values_in_the_csv_are_the_logged_terms(tmp_path):
    """metrics.csv step rows hold the same numbers the model logged on those steps."""
    from lit_gen.models.vae import VAE

    logged = []
    original = VAE.log_terms

    def log_terms(self, logs, prefix="train", prog_bar=()):
        if prefix == "train" and self.is_log_step():
            logged.append(float(logs["elbo"].detach()))
        return original(self, logs, prefix, prog_bar)

    VAE.log_terms = log_terms
    try:
        run = fit([ROOT / "conf" / "experiment" / "vae_digits.yaml"],
                  tiny_overrides(tmp_path / "r") + ["trainer.log_every_n_steps=3", "metrics.names=[]"])
    finally:
        VAE.log_terms = original
    rows = [r for r in csv.DictReader(open(run / "metrics.csv")) if r.get("train/elbo_step")]
    assert [int(r["step"]) for r in rows] == [2, 5]
    assert [float(r["train/elbo_step"]) for r in rows] == pytest.approx(logged, rel=1e-6)
    assert len(logged) == 2


Pair = namedtuple("Pair", "x y")


def test_batch_transfer_fast_path():
    from lit_gen.models.base import Batch, GenerativeModule

    module = GenerativeModule(data_info={"shape": [1, 4, 4], "num_classes": 0, "name": "t"})
    cpu = torch.device("cpu")
    x, y = torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.long)
    same = (x, y)
    assert module.transfer_batch_to_device(same, cpu, 0) is same  # already there
    for batch in ([x, y], Batch(x, y), Pair(x, y)):
        out = module.transfer_batch_to_device(batch, torch.device("meta"), 0)
        assert type(out) is type(batch) and all(t.device.type == "meta" for t in out)
    out = module.transfer_batch_to_device({"x": x}, torch.device("meta"), 0)  # Lightning's path
    assert out["x"].device.type == "meta"


def test_plain_attributes_skip_module_bookkeeping():
    from lit_gen.models.base import GenerativeModule

    module = GenerativeModule(data_info={"shape": [1, 4, 4], "num_classes": 0, "name": "t"})
    module.g_steps = 5
    module._current_fx_name = "training_step"
    assert module.__dict__["g_steps"] == 5 and module._current_fx_name == "training_step"
    keys = set(module.state_dict())
    module.extra = torch.nn.Linear(2, 2)  # other names keep nn.Module's registration
    assert set(module.state_dict()) == keys | {"extra.weight", "extra.bias"}


def test_epoch_sums_hand_computed():
    sums = EpochSums()
    a = torch.tensor(1.5, requires_grad=True)
    sums.add({"loss": a * 2, "w": 0.5, "half": torch.tensor(2.0, dtype=torch.bfloat16)}, prog_bar=("loss",))
    sums.add({"loss": torch.tensor([4.0]), "w": 1.0, "half": torch.tensor(3.0, dtype=torch.bfloat16)})
    sums.add({"loss": torch.tensor(1.0)})
    means = sums.means()
    assert means["loss"][0].item() == pytest.approx((3.0 + 4.0 + 1.0) / 3) and means["loss"][1]
    assert means["w"][0].item() == pytest.approx(0.75) and not means["w"][1]
    assert means["half"][0].item() == pytest.approx(2.5) and means["half"][0].dtype == torch.float32
    assert not sums.sums["loss"].requires_grad and a.grad is None
