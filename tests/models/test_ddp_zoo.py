"""Every model class in the zoo trains under DDP (2 CPU processes, gloo): it finishes, every
rank ends with identical parameters, and only rank 0 writes the run dir."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import EXPERIMENTS, TINY_BATCHES, run_cli, tiny_overrides

pytestmark = pytest.mark.slow


def experiment_per_model() -> dict[str, str]:
    """One digits experiment (no download) for each registered model: `<model>_digits.yaml`
    when it exists, else the first digits experiment of that model class."""
    from lit_gen import validation
    from lit_gen.models import MODELS

    found: dict[str, str] = {}
    for exp in EXPERIMENTS:
        if not exp.stem.endswith("_digits"):
            continue
        name = validation.load([exp]).model.name
        if name in MODELS and (name not in found or exp.stem == f"{name}_digits"):
            found[name] = str(exp)
    return dict(sorted(found.items()))


CASES = experiment_per_model()


@pytest.mark.parametrize("model", list(CASES))
def test_every_model_trains_under_ddp(model, tmp_path):
    run_dir = tmp_path / "run"
    overrides = [o for o in tiny_overrides(run_dir, epochs=1) if not o.startswith("trainer.devices")]
    proc = run_cli("lit_gen.fit", "--config", CASES[model], *overrides, "trainer.devices=2",
                   "trainer.strategy=ddp", timeout=300, env={"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert (metrics["ddp_world_size"], metrics["ddp_ranks_identical"]) == (2, 1)
    # each rank takes half of the 96 examples: 3 batches of 16 (InfoGAN's Q head in D's
    # optimizer and BEGAN's all-reduced k_t included)
    assert metrics["g_step"] == min(TINY_BATCHES, 96 // 2 // 16)
    assert json.loads((run_dir / "done.json").read_text())["epoch"] == 1
    assert json.loads((run_dir / "environment.json").read_text())["device"].endswith(" x 2")
    # one writer: the files rank 0 writes exist once, nothing else appears beside them
    assert sorted(p.name for p in run_dir.iterdir() if p.name != "wandb") == [
        "checkpoints", "config.yaml", "done.json", "environment.json", "hparams.yaml",
        "metrics.csv", "metrics.json", "samples"]
    grids = sorted(p.name for p in (run_dir / "samples").iterdir())
    assert "samples_final.png" in grids
    assert all(re.fullmatch(r"[a-z0-9_]+_(epoch0001|final)\.png", g) for g in grids), grids
    assert not (tmp_path / "lightning_logs").exists() and sorted(tmp_path.iterdir()) == [run_dir]
