"""The adversarial loop's options: n_critic schedule, clipping, schedulers, EMA, wandb offline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from lit_gen.errors import ConfigError
from lit_gen.run.checkpoint import load_model, read_checkpoint
from tests.conftest import ROOT, fit, tiny_overrides

RING = ROOT / "conf" / "experiment" / "gan_ring2d.yaml"


def test_n_critic_schedule(tmp_path):
    fit([RING], tiny_overrides(tmp_path / "r") + ["model.n_critic=3"])
    state = read_checkpoint(tmp_path / "r" / "checkpoints" / "last.ckpt")["lit_gen"]
    assert state["d_steps"] == 6 and state["g_steps"] == 2  # 6 batches, a G step every 3rd


def test_gradient_clipping_bounds_update(tmp_path):
    """SGD with lr 1 and clipped gradient norm c moves each net by at most c per step."""
    sgd = {"name": "sgd", "lr": 1.0}
    over = tiny_overrides(tmp_path / "r") + [
        "trainer.limit_train_batches=1", "trainer.gradient_clip_val=0.001",
        f"model.g_optim={sgd}".replace("'", ""), f"model.d_optim={sgd}".replace("'", ""),
        "model.generator.norm=none"]
    from lit_gen import validation
    from lit_gen.data import build_datamodule
    from lit_gen.models import build_model

    cfg = validation.load([RING], over)
    import lightning as L

    L.seed_everything(cfg.seed, verbose=False)  # the same initial weights as fit's
    dm = build_datamodule(cfg.data, cfg.seed)
    dm.setup()
    before = build_model(cfg, dm.info().as_dict()).state_dict()
    fit([RING], over)
    after = read_checkpoint(tmp_path / "r" / "checkpoints" / "last.ckpt")["state_dict"]
    for net in ("generator.", "discriminator."):
        delta = torch.cat([(after[k] - before[k]).flatten() for k in before
                           if k.startswith(net) and before[k].is_floating_point()])
        assert 0 < delta.norm().item() <= 0.001 * (1 + 1e-4)


def test_lr_scheduler_steps_per_epoch(tmp_path):
    fit([RING], tiny_overrides(tmp_path / "r", epochs=2) + [
        "model.g_optim.scheduler=step", "model.g_optim.scheduler_args={step_size: 1, gamma: 0.5}",
        "model.g_optim.lr=0.001"])
    ckpt = read_checkpoint(tmp_path / "r" / "checkpoints" / "last.ckpt")
    lr_g = ckpt["optimizer_states"][0]["param_groups"][0]["lr"]
    assert lr_g == pytest.approx(0.001 * 0.5**2)
    assert ckpt["optimizer_states"][1]["param_groups"][0]["lr"] == pytest.approx(1e-3)


def test_generator_ema_is_saved_and_used_for_sampling(tmp_path):
    fit([RING], tiny_overrides(tmp_path / "r") + ["model.ema.decay=0.5"])
    model = load_model(tmp_path / "r" / "checkpoints" / "last.ckpt")
    assert model.generator_ema is not None
    assert not any(p.requires_grad for p in model.generator_ema.parameters())
    assert all(not k.startswith("discriminator") for k in model.generator_ema.state_dict())
    g = dict(model.generator.named_parameters())
    e = dict(model.generator_ema.named_parameters())
    assert any(not torch.equal(g[k], e[k]) for k in g)  # averaged, not a copy
    torch.manual_seed(0)
    x = model.sample(4)
    torch.manual_seed(0)
    z = torch.randn(4, model.latent_dim)
    assert torch.allclose(x, model.generator_ema.eval()(z))


def test_ema_update_formula():
    from lit_gen import validation
    from lit_gen.models import build_model

    cfg = validation.load([RING], ["model.ema.decay=0.9", "model.ema.start_step=1"])
    model = build_model(cfg, {"name": "ring2d", "kind": "toy", "shape": [2], "num_classes": 8})
    w0 = model.generator.net[0].weight.detach().clone()
    with torch.no_grad():
        model.generator.net[0].weight.add_(1.0)
    model.g_steps = 1  # not past start_step: the EMA copies the generator
    model.update_ema()
    assert torch.allclose(model.generator_ema.net[0].weight, w0 + 1.0)
    with torch.no_grad():
        model.generator.net[0].weight.add_(1.0)
    model.g_steps = 2  # past start_step: ema = 0.9 ema + 0.1 g
    model.update_ema()
    assert torch.allclose(model.generator_ema.net[0].weight, 0.9 * (w0 + 1) + 0.1 * (w0 + 2))


def test_wandb_offline_logging(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    fit([RING], tiny_overrides(tmp_path / "r") + ["logger.wandb.enabled=true"])
    runs = list((tmp_path / "r" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].glob("*.wandb"))
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["epoch"] == 1


def test_print_config_and_default_classifier_need_no_classifier_file(tmp_path, monkeypatch, capsys):
    """The quickstart's classifier file is missing on a fresh clone: --print-config works,
    and a run trains it first (one line), with the command `make quickstart` uses."""
    import subprocess

    from lit_gen import fit as fit_mod
    from lit_gen import validation
    from lit_gen.run import classifiers

    quickstart = str(ROOT / "conf" / "experiment" / "quickstart.yaml")
    monkeypatch.chdir(tmp_path)
    assert fit_mod.main(["--config", quickstart, "--print-config"]) == 0
    assert "classifier_ckpt: runs/classifiers/digits-16px.pt" in capsys.readouterr().out
    calls = []

    def fake_run(cmd, **kwargs):  # stands in for the minute of training
        calls.append(cmd)
        out = Path(cmd[cmd.index("--out") + 1])
        out.parent.mkdir(parents=True)
        out.write_bytes(b"x")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    monkeypatch.setattr(classifiers.subprocess, "run", fake_run)
    cfg = validation.load([quickstart])
    assert classifiers.ensure_default_classifier(cfg) == Path("runs/classifiers/digits-16px.pt")
    assert calls == [[sys.executable, "-m", "lit_gen.train_classifier", "--data", "digits",
                      "data.image_size=16", "--out", "runs/classifiers/digits-16px.pt"]]
    assert capsys.readouterr().err.count("\n") == 1
    assert classifiers.ensure_default_classifier(cfg) is None  # present now: nothing to do
    with pytest.raises(ConfigError, match="file not found"):  # not a default path: no guess
        validation.load([quickstart], ["metrics.classifier_ckpt=elsewhere/digits-16px.pt"])


def test_a_run_logs_no_lightning_advert_or_empty_loader_warning(tmp_path, capfd, caplog):
    """Lightning logs a "Tip" advertising its cloud logger at every fit, and warns
    "Total length of `list` across ranks is zero" for a data set with no validation split
    (the toys, every ensemble): noise in every run's log. Neither reaches the output now;
    Lightning's other lines still do."""
    import logging
    import warnings

    caplog.set_level(logging.INFO, logger="lightning.pytorch")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit([RING], tiny_overrides(tmp_path / "r") + ["seeds=[0, 1]"])
    out, err = capfd.readouterr()
    shown = out + err + caplog.text + "".join(str(w.message) for w in caught)
    assert "GPU available" in shown  # Lightning's own lines are kept
    assert "Tip:" not in shown and "litlogger" not in shown
    assert "across ranks is zero" not in shown
