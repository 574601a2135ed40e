"""The contract every registered model keeps (`MODELS.names()`, so a new model is tested by
registering it): from the `tiny_config` it declares, it builds, trains a few steps on CPU,
logs exactly its declared `logged_terms`, writes its `grid_names`, saves a checkpoint that
names its registry entry, resumes, and samples from the checkpoint alone."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from lit_gen.errors import CheckpointError
from lit_gen.metrics.likelihood import supports_likelihood
from lit_gen.models import MODELS
from lit_gen.run.checkpoint import load_model, read_checkpoint, stored_config
from tests.conftest import TINY_BATCHES, fit, tiny_overrides


def alternates(cls) -> bool:
    """True for the models with a discriminator step (`GenerativeModule.alternate`)."""
    return "n_critic" in cls.hparam_names()


def tiny_experiment(name: str, directory) -> tuple:
    """(experiment yaml, n_critic) of a model's tiny config; models with a D/G alternation
    run n_critic=2, so the schedule is checked too."""
    cls = MODELS.get(name)
    n_critic = 2 if alternates(cls) else 1
    model = {**cls.tiny_config.get("model", {}), "name": name}
    if n_critic != 1:
        model["n_critic"] = n_critic
    path = directory / f"{name}_tiny.yaml"
    OmegaConf.save(OmegaConf.create({**cls.tiny_config, "model": model}), path)
    return path, n_critic


@pytest.mark.parametrize("name", MODELS.names())
def test_model_contract(name, tmp_path):
    from lit_gen import sample

    cls = MODELS.get(name)
    exp, n_critic = tiny_experiment(name, tmp_path)
    run = tmp_path / "run"
    fit([exp], tiny_overrides(run))

    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epoch"] == 1 and metrics["g_step"] == TINY_BATCHES // n_critic
    penalties = OmegaConf.load(exp).model.get("penalties", [])
    declared = set(cls.logged_terms) | {f"train/penalty_{p['name']}" for p in penalties}
    logged = {k for k in metrics if k.startswith(("train/", "val/"))}
    assert logged == declared, f"logged but not declared: {sorted(logged - declared)}; " \
                               f"declared but not logged: {sorted(declared - logged)}"
    assert all(math.isfinite(metrics[k]) for k in logged)
    for grid in cls.grid_names:
        assert (run / "samples" / f"{grid}_final.png").is_file(), grid

    last = run / "checkpoints" / "last.ckpt"
    ckpt = read_checkpoint(last)
    assert ckpt["lit_gen"]["model"] == name
    assert ckpt["lit_gen"]["d_steps"] == (TINY_BATCHES if alternates(cls) else 0)
    assert "run_config" not in ckpt["hyper_parameters"]
    cfg = stored_config(last)
    assert cfg.model.name == name and cfg.experiment == exp.stem
    shape = ckpt["hyper_parameters"]["data_info"]["shape"]
    if supports_likelihood(cls):
        # logged terms are consistent: elbo = -(recon + kl), per example, in nats
        assert metrics["val/elbo"] == pytest.approx(-(metrics["val/recon"] + metrics["val/kl"]),
                                                    rel=1e-4)
        assert -2000 < metrics["val/elbo"] < 0
    elif "val/recon" in declared:  # ||x - y||^2 per example of images in [-1, 1]
        assert 0 < metrics["val/recon"] < 4 * math.prod(shape)

    fit([exp], tiny_overrides(run, epochs=2) + ["resume=last"])
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epoch"] == 2 and metrics["g_step"] == 2 * TINY_BATCHES // n_critic

    model = load_model(last)
    assert model.g_steps == 2 * TINY_BATCHES // n_critic and model.conditional == cls.conditional
    labels = torch.tensor([3, 1, 4, 1, 5]) if model.conditional else None
    x = model.sample(5, labels)
    assert x.shape == (5, *shape)
    assert torch.isfinite(x).all() and x.min() >= -1.0 and x.max() <= 1.0
    # the sample command rebuilds the model from the checkpoint alone
    out = tmp_path / "s.npz"
    assert sample.main(["--ckpt", str(last), "--n", "3", "--out", str(out)]) == 0
    assert np.load(out)["x"].shape == (3, *shape)


def old_form(ckpt: dict) -> dict:
    """A checkpoint as lit_gen wrote them before checkpoints named the registry entry: the
    class name, and the run config among the hyper-parameters."""
    state = dict(ckpt["lit_gen"])
    name, run_config = state.pop("model"), state.pop("run_config")
    state["model_class"] = MODELS.get(name).__name__
    return {**ckpt, "lit_gen": state,
            "hyper_parameters": {**ckpt["hyper_parameters"], "run_config": run_config}}


def test_checkpoints_of_the_older_form_load_and_unknown_models_are_refused(tmp_path):
    exp, _ = tiny_experiment("vae", tmp_path)
    run = tmp_path / "run"
    fit([exp], tiny_overrides(run, epochs=1))
    ckpt = read_checkpoint(run / "checkpoints" / "last.ckpt")
    assert ckpt["hyper_parameters"]["binarize"] is True  # data.binarize, the VAE's own argument
    old = tmp_path / "old.ckpt"
    torch.save(old_form(ckpt), old)
    model = load_model(old)
    assert type(model).__name__ == "VAE" and model.hparams.binarize is True
    assert model.g_steps == TINY_BATCHES
    new = load_model(run / "checkpoints" / "last.ckpt")
    torch.manual_seed(0)
    a = model.sample(4)
    torch.manual_seed(0)
    torch.testing.assert_close(a, new.sample(4))
    assert stored_config(old).model.name == "vae"

    for lit_gen_state, words in (({**ckpt["lit_gen"], "model": "nosuch"}, "model 'nosuch'"),
                                 ({"model_class": "NoSuchGAN"}, "class 'NoSuchGAN'")):
        bad = tmp_path / "bad.ckpt"
        torch.save({**ckpt, "lit_gen": lit_gen_state}, bad)
        with pytest.raises(CheckpointError, match=f"{words}.*known models: aae, acgan"):
            load_model(bad)
