"""`step_optimizer`'s direct path (backward and optimizer step without Lightning's hook
dispatch): taken only when nothing hooks into the step, and bit-identical to Lightning's
manual_backward + LightningOptimizer.step, step counting included."""

from __future__ import annotations

import lightning as L
import pytest

from lit_gen.models import base
from tests.conftest import ROOT, assert_same_training, fit, tiny_overrides

EXP = ROOT / "conf" / "experiment"


class _Module(L.LightningModule):
    pass


class _Hooked(L.Callback):
    def on_after_backward(self, trainer, pl_module) -> None:
        pass


@pytest.mark.parametrize(("kwargs", "hooked_module", "allowed"), [
    ({}, False, True),
    ({"precision": "bf16-mixed"}, False, False),
    ({"callbacks": [_Hooked()]}, False, False),
    ({}, True, False),
])
def test_direct_steps_only_when_nothing_hooks_into_the_step(kwargs, hooked_module, allowed):
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, **kwargs)
    module = type("Hooked", (_Module,), {"on_before_backward": lambda self, loss: None})() \
        if hooked_module else _Module()
    module.trainer = trainer
    assert base.direct_steps_allowed(module) is allowed


@pytest.mark.parametrize(("experiment", "extra"), [
    ("wgan_gp_digits", ["trainer.gradient_clip_val=0.5"]),  # n_critic 5, GP, clipping
    ("vae_digits", []),
])
def test_direct_steps_equal_lightnings_path(experiment, extra, tmp_path, monkeypatch):
    taken = []
    allowed = base.direct_steps_allowed
    monkeypatch.setattr(base, "direct_steps_allowed",
                        lambda m: taken.append(allowed(m)) or taken[-1])
    over = tiny_overrides(tmp_path / "direct", epochs=2) + ["metrics.names=[]", *extra]
    direct = fit([EXP / f"{experiment}.yaml"], over)
    assert taken == [True]
    monkeypatch.setattr(base, "direct_steps_allowed", lambda m: False)
    over = tiny_overrides(tmp_path / "lightning", epochs=2) + ["metrics.names=[]", *extra]
    lightning = fit([EXP / f"{experiment}.yaml"], over)
    assert_same_training(direct, lightning)


def test_toggled_optimizer_freezes_only_the_other_players_parameters(tmp_path):
    """Inside toggled_optimizer(opt_g) only G's parameters need gradients; on exit every
    flag is back, a parameter the user froze included (Lightning's toggle semantics)."""
    from lit_gen.run.checkpoint import load_model

    run = fit([EXP / "gan_ring2d.yaml"], tiny_overrides(tmp_path / "r") + ["metrics.names=[]"])
    model = load_model(run / "checkpoints" / "last.ckpt")
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, max_steps=0)
    model.trainer = trainer
    opt_g, opt_d = model.configure_optimizers()[0]
    trainer.strategy.optimizers = [opt_g, opt_d]
    frozen = next(model.discriminator.parameters())
    frozen.requires_grad_(False)
    for opt, mine, other in ((opt_g, model.generator, model.discriminator),
                             (opt_d, model.discriminator, model.generator)):
        with model.toggled_optimizer(opt):
            assert all(p.requires_grad for p in mine.parameters() if p is not frozen)
            assert not any(p.requires_grad for p in other.parameters())
        assert not frozen.requires_grad
        assert all(p.requires_grad for net in (model.generator, model.discriminator)
                   for p in net.parameters() if p is not frozen)
