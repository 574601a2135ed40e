"""Generator EMA: generator only, exact update rule, saved in checkpoints, used for samples
and metrics."""

from __future__ import annotations

import pytest
import torch

from lit_gen import validation
from lit_gen.data import build_datamodule
from lit_gen.models import build_model
from tests.conftest import fit, tiny_overrides

EXPERIMENT = "conf/experiment/dcgan_digits.yaml"


def make_model(*overrides):
    cfg = validation.load([EXPERIMENT], list(overrides))
    return build_model(cfg, build_datamodule(cfg.data).info().as_dict())


def test_ema_copies_the_generator_only():
    model = make_model("model.ema.decay=0.9")
    keys = model.state_dict().keys()
    ema = {k.removeprefix("generator_ema.") for k in keys if k.startswith("generator_ema.")}
    gen = {k.removeprefix("generator.") for k in keys if k.startswith("generator.")}
    assert ema == gen and len(ema) > 0
    assert not any("discriminator" in k and "ema" in k for k in keys)
    assert all(not p.requires_grad for p in model.generator_ema.parameters())
    opt_g, opt_d = model.configure_optimizers()[0]
    ema_ids = {id(p) for p in model.generator_ema.parameters()}
    assert not ema_ids & {id(p) for g in (opt_g, opt_d) for group in g.param_groups for p in group["params"]}
    assert make_model().generator_ema is None  # disabled by default
    assert not any(k.startswith("generator_ema.") for k in make_model().state_dict())


def test_ema_update_rule_and_start_step():
    model = make_model("model.ema.decay=0.9", "model.ema.start_step=2")
    w = dict(model.generator.named_parameters())["project.0.weight"]
    ema_w = dict(model.generator_ema.named_parameters())["project.0.weight"]
    with torch.no_grad():
        ema_w.fill_(0.0)
        w.fill_(1.0)
    model.g_steps = 2  # not past start_step: the copy follows the generator
    model.update_ema()
    assert torch.equal(ema_w, w)
    with torch.no_grad():
        ema_w.fill_(0.0)
        w.fill_(1.0)
    model.g_steps = 3
    model.update_ema()  # ema = 0.9 * 0 + 0.1 * 1
    torch.testing.assert_close(ema_w, torch.full_like(w, 0.1))
    model.update_ema()  # 0.9 * 0.1 + 0.1 * 1
    torch.testing.assert_close(ema_w, torch.full_like(w, 0.19))


def test_sample_uses_the_ema_generator():
    model = make_model("model.ema.decay=0.9")
    with torch.no_grad():
        for p in model.generator_ema.parameters():
            p.mul_(0.5)
    model.eval()
    torch.manual_seed(0)
    x = model.sample(8)
    torch.manual_seed(0)
    z = model.sample_latent(8)
    torch.testing.assert_close(x, model.generator_ema(z))
    assert not torch.allclose(x, model.generator(z))


@pytest.mark.slow
def test_ema_saved_in_checkpoint_and_used_for_metrics(tmp_path, digits_classifier):
    from lit_gen.run.checkpoint import load_model, read_checkpoint
    from lit_gen.run.dir import read_metrics

    run_dir = fit([EXPERIMENT], tiny_overrides(tmp_path / "run", epochs=1) + [
        "model.ema.decay=0.5", "metrics.names=[fid]", "metrics.feature_extractor=classifier",
        f"metrics.classifier_ckpt={digits_classifier}", f"metrics.cache_dir={tmp_path / 'cache'}"])
    ckpt = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    sd = ckpt["state_dict"]
    ema_keys = [k for k in sd if k.startswith("generator_ema.")]
    assert ema_keys and len(ema_keys) == len([k for k in sd if k.startswith("generator.")])
    w = "project.0.weight"
    assert not torch.equal(sd[f"generator_ema.{w}"], sd[f"generator.{w}"])  # averaged, not a copy
    model = load_model(run_dir / "checkpoints" / "last.ckpt")
    torch.testing.assert_close(model.generator_ema.state_dict()[w], sd[f"generator_ema.{w}"])
    assert model.sampling_generator() is model.generator_ema
    metrics = read_metrics(run_dir)
    assert metrics["protocol"]["ema"] is True and metrics["fid"] > 0
