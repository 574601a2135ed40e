"""DDP with 2 CPU processes (gloo): training finishes and every rank holds identical weights."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT, run_cli, tiny_overrides

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("exp", ["wgan_gp_digits"])  # every model class: tests/models/test_ddp_zoo.py
def test_ddp_two_cpu_processes(exp, tmp_path):
    run_dir = tmp_path / "run"
    overrides = [o for o in tiny_overrides(run_dir, epochs=2) if not o.startswith("trainer.devices")]
    proc = run_cli("lit_gen.fit", "--config", str(ROOT / "conf" / "experiment" / f"{exp}.yaml"),
                   *overrides, "trainer.devices=2", "trainer.strategy=ddp",
                   "run.sample_every_n_epochs=1", "run.write_every_s=0",  # periodic writes
                   timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["ddp_world_size"] == 2
    assert metrics["ddp_ranks_identical"] == 1
    assert metrics["epoch"] == 2 and metrics["g_step"] >= 1
    # only rank 0 writes the run dir: one config, one set of grids
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == [
        "samples_epoch0001.png", "samples_epoch0002.png", "samples_final.png"]


@pytest.mark.parametrize("strategy", ["ddp", "ddp_spawn", "ddp_fork"])
def test_every_ddp_launcher_tolerates_alternating_players(strategy, tmp_path):
    from lit_gen import validation
    from lit_gen.models import MODELS
    from lit_gen.run.trainer import trainer_kwargs

    cfg = validation.load([ROOT / "conf" / "experiment" / "dcgan_digits.yaml"],
                      [f"trainer.strategy={strategy}"])
    gan = type("M", (), {"ddp_find_unused_parameters": MODELS.get("gan").ddp_find_unused_parameters})
    assert trainer_kwargs(cfg, gan)["strategy"] == f"{strategy}_find_unused_parameters_true"
    single = type("M", (), {"ddp_find_unused_parameters": False})
    assert trainer_kwargs(cfg, single)["strategy"] == strategy
