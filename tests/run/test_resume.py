"""A run of 2 epochs and a run of 1 epoch resumed for 1 more end with identical weights."""

from __future__ import annotations

import json

import pytest
import torch

from lit_gen.errors import CheckpointError, ConfigError
from lit_gen.run.checkpoint import read_checkpoint
from tests.conftest import ROOT, fit, tiny_overrides


def generator_state(run_dir):
    sd = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")["state_dict"]
    return {k: v for k, v in sd.items() if k.startswith("generator.")}


@pytest.mark.parametrize("exp", ["wgan_gp_digits", "gan_ring2d", "dcgan_digits"])
def test_resume_equals_uninterrupted(exp, tmp_path):
    cfg = [ROOT / "conf" / "experiment" / f"{exp}.yaml"]
    det = ["trainer.deterministic=true"]
    full, split = tmp_path / "full", tmp_path / "split"
    fit(cfg, tiny_overrides(full, epochs=2) + det)
    fit(cfg, tiny_overrides(split, epochs=1) + det)
    one_epoch = generator_state(split)
    fit(cfg, tiny_overrides(split, epochs=2) + det + ["resume=last"])
    a, b = generator_state(full), generator_state(split)
    assert a.keys() == b.keys() and len(a) > 0
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # and training really moved the weights in the second epoch
    assert any(not torch.equal(one_epoch[k], b[k]) for k in b)
    ma = json.loads((full / "metrics.json").read_text())
    mb = json.loads((split / "metrics.json").read_text())
    assert ma["g_step"] == mb["g_step"]
    assert ma["train/d_loss"] == pytest.approx(mb["train/d_loss"], rel=1e-6)


def test_resume_from_explicit_path_keeps_run_dir_and_csv(tmp_path):
    cfg = [ROOT / "conf" / "experiment" / "gan_ring2d.yaml"]
    run = tmp_path / "r"
    fit(cfg, tiny_overrides(run, epochs=1))
    rows_before = (run / "metrics.csv").read_text().count("\n")
    fit(cfg, tiny_overrides(run, epochs=2)[1:] + [f"resume={run}/checkpoints/last.ckpt"])
    assert json.loads((run / "metrics.json").read_text())["epoch"] == 2
    assert (run / "metrics.csv").read_text().count("\n") > rows_before  # appended, not lost


def test_existing_run_dir_is_not_overwritten(tmp_path):
    cfg = [ROOT / "conf" / "experiment" / "gan_ring2d.yaml"]
    run = tmp_path / "r"
    fit(cfg, tiny_overrides(run, epochs=1))
    before = (run / "checkpoints" / "last.ckpt").read_bytes()
    with pytest.raises(ConfigError, match="resume=last"):
        fit(cfg, tiny_overrides(run, epochs=1))
    assert (run / "checkpoints" / "last.ckpt").read_bytes() == before


def test_resume_errors(tmp_path):
    cfg = [ROOT / "conf" / "experiment" / "gan_ring2d.yaml"]
    with pytest.raises(CheckpointError, match="does not exist"):
        fit(cfg, tiny_overrides(tmp_path / "none") + ["resume=last"])
    bad = tmp_path / "checkpoints" / "bad.ckpt"
    bad.parent.mkdir()
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        fit(cfg, tiny_overrides(tmp_path / "x")[1:] + [f"resume={bad}"])


def test_killed_run_resumes_from_last_epoch(tmp_path, monkeypatch):
    """A crash mid-run resumes from the last periodic last.ckpt (here due at every epoch end:
    no minimum interval, and no cost floor), so it loses at most one interval."""
    import lightning as L

    import lit_gen.callbacks.cadence as cadence
    import lit_gen.fit as fit_mod

    monkeypatch.setattr(cadence, "WRITE_BUDGET", float("inf"))  # interval = write_every_s

    class Crash(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == 2:
                raise RuntimeError("simulated crash")

    original = fit_mod.build_callbacks
    monkeypatch.setattr(fit_mod, "build_callbacks", lambda cfg, d: original(cfg, d) + [Crash()])
    cfg = [ROOT / "conf" / "experiment" / "gan_ring2d.yaml"]
    run = tmp_path / "r"
    with pytest.raises(RuntimeError, match="simulated crash"):
        fit(cfg, tiny_overrides(run, epochs=4) + ["run.write_every_s=0"])
    state = read_checkpoint(run / "checkpoints" / "last.ckpt")
    assert state["epoch"] == 1 and state["lit_gen"]["g_steps"] == 12  # 2 epochs x 6 batches
    monkeypatch.setattr(fit_mod, "build_callbacks", original)
    fit(cfg, tiny_overrides(run, epochs=4) + ["resume=last"])
    assert json.loads((run / "metrics.json").read_text())["epoch"] == 4
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt"]


def test_done_json_counts_the_training_time_of_every_launch(tmp_path):
    """train_seconds = the time carried in the checkpoint resumed from + this launch, so a
    resumed run does not report only its last launch (wall_seconds); unknown (absent) when
    the checkpoint predates the clock."""
    cfg = [ROOT / "conf" / "experiment" / "gan_ring2d.yaml"]
    run = tmp_path / "r"
    fit(cfg, tiny_overrides(run, epochs=1))
    done = json.loads((run / "done.json").read_text())
    assert 0 <= done["train_seconds"] - done["wall_seconds"] < 5  # + building the Trainer
    carried = read_checkpoint(run / "checkpoints" / "last.ckpt")["lit_gen_clock"]["train_seconds"]
    assert 0 < carried <= done["train_seconds"] + 0.1
    fit(cfg, tiny_overrides(run, epochs=2) + ["resume=last"])
    done = json.loads((run / "done.json").read_text())
    assert carried <= done["train_seconds"] - done["wall_seconds"] < carried + 5
    # a checkpoint written before the clock existed: the total is unknown, not guessed
    for epochs, clock in ((3, None), (4, {"train_seconds": "1 hour"}), (5, float("nan"))):
        ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
        ckpt.pop("lit_gen_clock")
        if clock is not None:
            ckpt["lit_gen_clock"] = clock
        torch.save(ckpt, run / "checkpoints" / "last.ckpt")
        fit(cfg, tiny_overrides(run, epochs=epochs) + ["resume=last"])
        done = json.loads((run / "done.json").read_text())
        assert "train_seconds" not in done and done["epoch"] == epochs
