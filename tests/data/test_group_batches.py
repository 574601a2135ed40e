"""`data.group_batches=K`: K training batches per Lightning batch, trained in turn. The run
is the same run as with K = 1 (same batches, same steps, same parameters, step counting and
max_steps included); only Lightning's per-batch work is paid once per K batches."""

from __future__ import annotations

import pytest
import torch

from lit_gen import validation
from lit_gen.data import build_datamodule
from lit_gen.data.base import BatchGroup, GroupedBatches
from lit_gen.data.members import MemberDataModule
from lit_gen.errors import ConfigError, DataError
from lit_gen.run.checkpoint import read_checkpoint
from tests.conftest import ROOT, assert_same_training, fit

EXP = ROOT / "conf" / "experiment"


def small_run(run_dir, epochs: int = 2) -> list[str]:
    """A few-second run over whole epochs (no limit_train_batches, which counts Lightning
    batches: groups): 96 training examples in batches of 16."""
    return [f"run.dir={run_dir}", f"trainer.max_epochs={epochs}", "trainer.accelerator=cpu",
            "trainer.devices=1", "trainer.limit_val_batches=1", "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false", "trainer.log_every_n_steps=1", "data.batch_size=16", "data.n_samples=600",
            "data.limit=96", "metrics.names=[]", "run.sample_every_n_epochs=null"]


@pytest.mark.parametrize(("experiment", "extra"), [
    # 6 batches per epoch (data.limit): groups of 4 leave a last group of 2
    ("gan_ring2d", []),
    ("wgan_gp_grid2d", ["data.on_device=true"]),  # n_critic 5 across group boundaries
    ("vae_digits", ["model.params.kl_warmup_epochs=3"]),  # the warm-up reads each batch's index
    ("gan_ring2d", ["seeds=[0,1]"]),  # an ensemble's member batches
    ("dcgan_digits", ["model.channels_last=true"]),  # each batch of a group transformed
])
def test_grouped_run_equals_plain_run(experiment, extra, tmp_path):
    plain = fit([EXP / f"{experiment}.yaml"], small_run(tmp_path / "k1") + extra + ["data.group_batches=1"])
    grouped = fit([EXP / f"{experiment}.yaml"],
                  small_run(tmp_path / "k4") + extra + ["data.group_batches=4"])
    assert_same_training(plain, grouped)


def test_a_group_stops_at_max_steps(tmp_path):
    """max_steps=7 stops a run of single GAN batches (2 steps each) after batch 4 (8 steps):
    a group of 5 stops there too, inside it."""
    over = ["trainer.max_epochs=null", "trainer.max_steps=7"]
    plain = fit([EXP / "gan_ring2d.yaml"], small_run(tmp_path / "k1") + over + ["data.group_batches=1"])
    grouped = fit([EXP / "gan_ring2d.yaml"],
                  small_run(tmp_path / "k5") + over + ["data.group_batches=5"])
    assert read_checkpoint(grouped / "checkpoints" / "last.ckpt")["global_step"] == 8
    assert_same_training(plain, grouped)


def test_limit_train_batches_counts_the_datas_batches(tmp_path):
    """trainer.limit_train_batches=3 trains 3 batches per epoch whatever the groups."""
    over = ["trainer.limit_train_batches=3"]
    plain = fit([EXP / "gan_ring2d.yaml"], small_run(tmp_path / "k1") + over + ["data.group_batches=1"])
    grouped = fit([EXP / "gan_ring2d.yaml"],
                  small_run(tmp_path / "k2") + over + ["data.group_batches=2"])
    assert read_checkpoint(grouped / "checkpoints" / "last.ckpt")["global_step"] == 2 * 3 * 2
    assert_same_training(plain, grouped)


@pytest.mark.parametrize("on_device", [False, True])
def test_group_batches_groups_the_same_batches_and_skips_whole_groups(on_device):
    cfg = validation.load([str(EXP / "gan_ring2d.yaml")],
                          ["data.n_samples=600", "data.batch_size=16", f"data.on_device={on_device}",
                           "data.group_batches=1"])
    dm = build_datamodule(cfg.data)
    single = list(dm.train_dataloader())
    dm.cfg.group_batches = 3
    assert isinstance(dm.train_dataloader(), GroupedBatches)
    groups = list(dm.train_dataloader())
    assert len(groups) == 11 and len(single) == 33
    assert all(isinstance(g, BatchGroup) and g.size == 3 and g.epoch_batches == 33 for g in groups)
    flat = [b for g in groups for b in g.batches]
    for (xa, ya), (xb, yb) in zip(flat, single, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    dm.skip_batches(2)  # a resume after 2 Lightning batches: 6 of the data's
    resumed = list(dm.train_dataloader())
    assert len(resumed) == 9
    assert torch.equal(resumed[0].batches[0][0], flat[6][0])


def test_an_ensemble_resumed_mid_epoch_skips_every_members_batches():
    cfg = validation.load([str(EXP / "gan_ring2d.yaml")],
                          ["data.n_samples=600", "data.batch_size=16", "seeds=[0,1]",
                           "data.group_batches=1"])
    dm = MemberDataModule([build_datamodule(cfg.data, seed=s) for s in cfg.seeds])
    full = list(dm.train_dataloader())
    dm.skip_batches(5)
    resumed = list(dm.train_dataloader())
    assert len(resumed) == len(full) - 5
    for (xa, _), (xb, _) in zip(resumed, full[5:], strict=True):
        assert torch.equal(xa, xb)  # both members' rows, not member 0's alone


def test_group_batches_needs_one_process(monkeypatch):
    cfg = validation.load([str(EXP / "gan_ring2d.yaml")], ["data.group_batches=2"])
    dm = build_datamodule(cfg.data)
    monkeypatch.setattr(type(dm), "_training_device", lambda self: (torch.device("cpu"), 0, 2))
    with pytest.raises(DataError, match="data.group_batches=2 trains in one process"):
        dm.train_dataloader()


def test_group_batches_must_be_positive():
    with pytest.raises(ConfigError, match="data.group_batches must be positive"):
        validation.load([str(EXP / "gan_ring2d.yaml")], ["data.group_batches=0"])
