"""The non-finite guard (run.on_nonfinite): a run that meets a non-finite loss, gradient or
parameter stops with exit code 3, a message naming the step and the term, no done.json and
its last finite checkpoint untouched; `skip_step` drops such optimizer steps and counts
them."""

from __future__ import annotations

import json
import math

import pytest
import torch

from lit_gen import fit as fit_mod
from lit_gen.errors import NonFiniteError
from lit_gen.models import build_model
from lit_gen.run.checkpoint import read_checkpoint
from tests.conftest import ROOT, TINY_BATCHES, fit, tiny_overrides

RING = ROOT / "conf" / "experiment" / "gan_ring2d.yaml"
WGAN_GP = ROOT / "conf" / "experiment" / "wgan_gp_ring2d.yaml"
INF_GP = ["model.penalties=[{name: gp, weight: .inf}]", "model.n_critic=1"]


def cli(exp, overrides) -> int:
    return fit_mod.main(["--config", str(exp), *overrides])


def test_sgd_at_lr_1e3_stops_with_exit_3_and_keeps_the_good_checkpoint(tmp_path, capsys):
    run = tmp_path / "r"
    sgd = ["model.g_optim.name=sgd", "model.d_optim.name=sgd"]
    fit([RING], tiny_overrides(run) + sgd)
    last = run / "checkpoints" / "last.ckpt"
    ckpt = read_checkpoint(last)
    for state in ckpt["optimizer_states"]:  # the resumed optimizers step at lr 1e3
        for group in state["param_groups"]:
            group["lr"] = 1e3
    torch.save(ckpt, last)
    good = last.read_bytes()
    assert (run / "done.json").is_file()

    code = cli(RING, tiny_overrides(run, epochs=3) + sgd + ["resume=last"])
    err = capsys.readouterr().err
    assert code == 3, err
    assert "non-finite" in err and "generator steps" in err and "Lightning global step" in err
    assert "=nan" in err or "=inf" in err
    assert "run.on_nonfinite=skip_step" in err and "Traceback" not in err
    assert last.read_bytes() == good  # the last finite checkpoint, byte for byte
    assert not (run / "done.json").exists()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt"]


def test_an_infinite_penalty_weight_names_the_term(tmp_path, capsys):
    run = tmp_path / "r"
    code = cli(WGAN_GP, tiny_overrides(run) + INF_GP)
    err = capsys.readouterr().err
    assert code == 3
    # the first D step: its total and the penalty are infinite, nothing was trained yet
    assert "non-finite d_loss after 0 generator steps (Lightning global step 0" in err
    assert "penalty_gp=inf" in err and "d_loss=inf" in err
    assert not (run / "done.json").exists()
    assert not (run / "checkpoints" / "last.ckpt").exists()


def test_skip_step_drops_and_counts_the_non_finite_steps(tmp_path):
    """An infinite gradient penalty makes every D step non-finite: all 2 x 6 D steps are
    dropped (D keeps its initial weights), every G step is taken, the run finishes."""
    from lit_gen import validation
    from lit_gen.data import build_datamodule

    over = tiny_overrides(tmp_path / "r", epochs=2) + INF_GP + ["run.on_nonfinite=skip_step"]
    cfg = validation.load([WGAN_GP], over)
    torch.manual_seed(cfg.seed)  # fit's seed_everything: the same initial weights
    import lightning as L

    L.seed_everything(cfg.seed, verbose=False)
    dm = build_datamodule(cfg.data, cfg.seed)
    dm.setup()
    before = build_model(cfg, dm.info().as_dict()).state_dict()
    run = fit([WGAN_GP], over)

    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["train/skipped_steps"] == pytest.approx(2 * TINY_BATCHES, abs=0)
    ckpt = read_checkpoint(run / "checkpoints" / "last.ckpt")
    assert ckpt["lit_gen"]["skipped_steps"] == 2 * TINY_BATCHES
    assert ckpt["lit_gen"]["g_steps"] == 2 * TINY_BATCHES
    sd = ckpt["state_dict"]
    d_keys = [k for k in sd if k.startswith("discriminator.")]
    g_keys = [k for k in sd if k.startswith("generator.") and sd[k].is_floating_point()]
    assert d_keys and all(torch.equal(sd[k], before[k]) for k in d_keys)
    assert any(not torch.equal(sd[k], before[k]) for k in g_keys)
    assert all(torch.isfinite(v).all() for v in sd.values() if v.is_floating_point())
    assert (run / "done.json").is_file()
    rows = (run / "metrics.csv").read_text()
    assert "skipped_steps" in rows.splitlines()[0]


def ring_model(*overrides):
    from lit_gen import validation

    cfg = validation.load([RING], list(overrides))
    return build_model(cfg, {"name": "ring2d", "kind": "toy", "shape": [2], "num_classes": 8})


def test_logging_steps_check_the_step_values_and_the_epoch_sums():
    """The accelerator path: no per-step read, but the values a logging step copies to the
    host and the device-side epoch sums (a NaN on an earlier, unlogged step)."""
    model = ring_model()
    with pytest.raises(NonFiniteError, match=r"logged terms after 0 generator steps: d_loss=nan"):
        model.log_terms({"d_loss": torch.tensor(math.nan), "g_loss": torch.tensor(1.0)})
    model = ring_model()
    model._train_logs.add({"d_loss": torch.tensor(math.inf)})  # an unlogged step
    with pytest.raises(NonFiniteError, match=r"epoch sums.*d_loss \(epoch sum\)=inf"):
        model.log_terms({"d_loss": torch.tensor(0.5)})


def test_a_non_finite_parameter_is_never_saved():
    model = ring_model()
    with torch.no_grad():
        model.generator.net[0].weight[0, 0] = math.nan
    with pytest.raises(NonFiniteError, match="non-finite parameters.*generator.net.0.weight=nan"):
        model.on_save_checkpoint({})
    with torch.no_grad():
        model.generator.net[0].weight[0, 0] = 0.0
    checkpoint: dict = {}
    model.on_save_checkpoint(checkpoint)
    assert checkpoint["lit_gen"]["model"] == "gan"


def test_unknown_policy_is_refused_before_anything_is_written(tmp_path, capsys):
    run = tmp_path / "r"
    assert cli(RING, tiny_overrides(run) + ["run.on_nonfinite=ignore"]) == 2
    assert "run.on_nonfinite: unknown policy 'ignore'. Valid policies: stop, skip_step" in \
        capsys.readouterr().err
    assert not run.exists()
