"""Fast paths (docs/performance.md): every switch gives the plain path's results at fp32 on
CPU; mixed precision keeps gradient penalties exact and clipping after unscaling."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from lit_gen import validation
from lit_gen.errors import ConfigError
from lit_gen.losses import PENALTIES
from lit_gen.models.optim import apply_fast_paths, build_optimizer, default_optim, is_compiled
from lit_gen.nets import build_net
from lit_gen.run.checkpoint import read_checkpoint
from tests.conftest import ROOT, fit, tiny_overrides

DCGAN = ROOT / "conf" / "experiment" / "dcgan_digits.yaml"
WGAN_GP = ROOT / "conf" / "experiment" / "wgan_gp_digits.yaml"
SGD = ["model.g_optim={name: sgd, lr: 0.05}", "model.d_optim={name: sgd, lr: 0.05}"]
NARROW = ["model.generator.base_channels=8", "model.discriminator.base_channels=8"]


def final_state(run_dir) -> dict[str, torch.Tensor]:
    return read_checkpoint(run_dir / "checkpoints" / "last.ckpt")["state_dict"]


def assert_states_close(a: dict, b: dict, atol: float, init: dict | None = None) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if a[k].is_floating_point():
            assert torch.allclose(a[k], b[k], atol=atol, rtol=1e-4), k
    if init is not None:  # and training did move the weights (the comparison is not vacuous)
        moved = max((a[k] - init[k]).abs().max().item() for k in a if a[k].is_floating_point())
        assert moved > 100 * atol


def initial_state(cfg_file, overrides) -> dict[str, torch.Tensor]:
    import lightning as L

    from lit_gen.data import build_datamodule
    from lit_gen.models import build_model

    cfg = validation.load([str(cfg_file)], overrides)
    L.seed_everything(cfg.seed, verbose=False)  # fit's seeding: the same initial weights
    dm = build_datamodule(cfg.data, cfg.seed)
    dm.setup()
    return {k: v.clone() for k, v in build_model(cfg, dm.info().as_dict()).state_dict().items()}


# --- optimizer implementations -------------------------------------------------------------
def test_optimizer_flag_validation():
    with pytest.raises(ConfigError, match=r"model.g_optim: foreach and fused cannot both be true"):
        validation.load([str(DCGAN)], ["model.g_optim.foreach=true", "model.g_optim.fused=true"])
    with pytest.raises(ConfigError, match=r"model.d_optim.fused: optimizer 'rmsprop' has no fused"):
        validation.load([str(DCGAN)], ["model.d_optim.name=rmsprop", "model.d_optim.fused=true"])
    with pytest.raises(ConfigError, match=r"model.d_optim.fused=true with trainer.precision=16-mixed"):
        validation.load([str(DCGAN)], ["model.d_optim.fused=true", "trainer.precision=16-mixed",
                                   "trainer.gradient_clip_val=1.0"])
    cfg = validation.load([str(DCGAN)], ["model.d_optim.fused=true", "model.g_optim.foreach=false"])
    assert cfg.model.d_optim.fused is True and cfg.model.g_optim.foreach is False


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_foreach_and_fused_optimizers_match_the_default(name):
    torch.manual_seed(0)
    net = build_net({"name": "dcgan", "base_channels": 4}, "discriminator", in_shape=(1, 16, 16))
    x = torch.randn(8, 1, 16, 16)
    states = {}
    for flags in ({}, {"foreach": True}, {"fused": True}):
        model = copy.deepcopy(net)
        opt = build_optimizer(model.parameters(), default_optim(name=name, lr=0.01, momentum=0.9,
                                                                weight_decay=0.01, **flags), "o")
        assert all(opt.defaults.get(k) == v for k, v in flags.items())
        for _ in range(3):
            opt.zero_grad()
            model(x).pow(2).mean().backward()
            opt.step()
        states[tuple(flags)] = model.state_dict()
    base = states[()]
    for flags, state in states.items():
        for k in base:
            assert torch.allclose(state[k], base[k], rtol=1e-5, atol=1e-6), (flags, k)
    moved = (base["body.0.weight"] - net.state_dict()["body.0.weight"]).abs().max().item()
    assert 1e-3 < moved < 1.0


# --- channels_last ------------------------------------------------------------------------
def test_channels_last_converts_weights_and_batches():
    from lit_gen.models import build_model

    cfg = validation.load([str(DCGAN)], ["model.channels_last=true", *NARROW])
    model = build_model(cfg, {"name": "digits", "kind": "image", "shape": [1, 16, 16],
                              "num_classes": 10})
    convs = (model.discriminator.body[3], model.generator.blocks[0])  # multi-channel convs
    assert not any(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    model.configure_model()
    model.configure_model()  # idempotent
    for conv in convs:
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)
        assert not conv.weight.is_contiguous()
    x, y = model.on_after_batch_transfer((torch.randn(4, 3, 8, 8), torch.zeros(4)), 0)
    assert x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()
    toy = (torch.randn(4, 2), torch.zeros(4))
    assert model.on_after_batch_transfer(toy, 0)[0] is toy[0]  # 2D data untouched


def test_channels_last_training_matches_contiguous(tmp_path):
    over = [*SGD, *NARROW, "trainer.limit_train_batches=3"]
    init = initial_state(DCGAN, over)
    a = fit([DCGAN], tiny_overrides(tmp_path / "a") + over)
    b = fit([DCGAN], tiny_overrides(tmp_path / "b") + over + ["model.channels_last=true"])
    assert_states_close(final_state(a), final_state(b), atol=1e-5, init=init)


# --- torch.compile ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def compiler():
    try:
        torch.compile(lambda t: t * 2 + 1)(torch.ones(3))
    except Exception as err:  # noqa: BLE001 - any toolchain failure means "cannot compile here"
        pytest.skip(f"torch.compile does not work on this machine: {type(err).__name__}: {err}")


def test_compile_keeps_state_dict_keys_and_outputs(compiler):
    torch.manual_seed(0)
    gen = build_net({"name": "dcgan", "base_channels": 4}, "generator", latent_dim=8,
                    out_shape=(1, 16, 16))
    disc = build_net({"name": "dcgan", "base_channels": 4, "norm": "layer"}, "discriminator",
                     in_shape=(1, 16, 16))
    eager_g, eager_d = copy.deepcopy(gen).eval(), copy.deepcopy(disc)
    holder = torch.nn.ModuleDict({"generator": gen, "discriminator": disc})
    keys = list(holder.state_dict())
    apply_fast_paths(holder, [gen, disc], compile=True, channels_last=False)
    assert is_compiled(gen) and is_compiled(disc)
    assert list(holder.state_dict()) == keys
    z = torch.randn(5, 8)
    x = gen.eval()(z)
    assert torch.allclose(x, eager_g(z), atol=1e-5)
    assert torch.allclose(disc(x), eager_d(x), atol=1e-5)
    # the gradient penalty runs the critic eagerly (compiled graphs lack double backward)
    gp = PENALTIES.get("gp")(weight=10.0)
    torch.manual_seed(1)
    v_compiled = gp.loss(lambda t: disc(t).flatten(), x, x.flip(0))
    torch.manual_seed(1)
    v_eager = gp.loss(lambda t: eager_d(t).flatten(), x, x.flip(0))
    assert v_compiled.item() == pytest.approx(v_eager.item(), rel=1e-5)
    v_compiled.backward()
    v_eager.backward()
    g, g_ref = disc.body[0].weight.grad, eager_d.body[0].weight.grad
    assert g.abs().max() > 0 and torch.allclose(g, g_ref, rtol=1e-4, atol=1e-7)


@pytest.mark.slow
def test_compiled_wgan_gp_training_matches_eager(tmp_path, compiler):
    over = [*SGD, *NARROW, "trainer.limit_train_batches=2", "model.n_critic=1"]
    init = initial_state(WGAN_GP, over)
    a = fit([WGAN_GP], tiny_overrides(tmp_path / "a") + over)
    b = fit([WGAN_GP], tiny_overrides(tmp_path / "b") + over + ["model.compile=true"])
    assert_states_close(final_state(a), final_state(b), atol=1e-4, init=init)


# --- mixed precision ----------------------------------------------------------------------
def conv_critic():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, 2, 1), torch.nn.LeakyReLU(0.2),
                               torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 1))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_gradient_penalty_is_fp32_exact_under_autocast(dtype):
    """The penalty and its weight gradients under CPU autocast equal the fp32 values: the
    critic runs in fp32 with autocast off (fp16 double backprop would lose them)."""
    real, fake = torch.randn(6, 1, 8, 8), torch.randn(6, 1, 8, 8)
    values, grads = [], []
    for amp in (False, True):
        critic = conv_critic()
        torch.manual_seed(3)
        with torch.autocast("cpu", dtype=dtype, enabled=amp):
            term = PENALTIES.get("gp")(weight=10.0).loss(
                lambda t, c=critic: c(t).flatten(), real, fake)
        term.backward()
        values.append(term)
        grads.append(critic[0].weight.grad.clone())
    assert values[1].dtype == torch.float32
    assert values[1].item() == pytest.approx(values[0].item(), rel=1e-6)
    assert values[0].item() > 0
    assert torch.allclose(grads[1], grads[0], rtol=1e-5, atol=1e-8)


def test_wgan_gp_bf16_mixed_trains_without_nan(tmp_path):
    run = fit([WGAN_GP], tiny_overrides(tmp_path / "r") + [*NARROW, "trainer.precision=bf16-mixed",
                                                           "model.n_critic=2"])
    import json

    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 < metrics["train/penalty_gp"] < 1e4
    assert all(math.isfinite(v) for v in metrics.values() if isinstance(v, float))
    assert all(torch.isfinite(t).all() for t in final_state(run).values() if t.is_floating_point())


def fp16_cpu_plugin(init_scale: float = 2.0**16):
    """Lightning maps trainer.precision=16-mixed to bf16-mixed on CPU; its MixedPrecision
    plugin with a CPU GradScaler runs true fp16 autocast + loss scaling where torch can."""
    if not torch.amp.is_autocast_available("cpu"):
        pytest.skip("this torch has no CPU autocast")
    try:
        with torch.autocast("cpu", dtype=torch.float16):
            torch.nn.Conv2d(1, 2, 3)(torch.randn(1, 1, 5, 5))
        scaler = torch.amp.GradScaler("cpu", init_scale=init_scale)
    except (RuntimeError, TypeError) as err:
        pytest.skip(f"fp16 autocast / GradScaler unsupported on CPU here: {err}")
    from lightning.pytorch.plugins.precision import MixedPrecision

    return MixedPrecision("16-mixed", "cpu", scaler)


def fit_with_plugin(cfg_file, overrides, plugin, run_dir, module_hook=None):
    import lightning as L

    from lit_gen.data import build_datamodule
    from lit_gen.models import build_model
    from lit_gen.run.trainer import build_callbacks, build_loggers, trainer_kwargs

    cfg = validation.load([str(cfg_file)], tiny_overrides(run_dir) + overrides)
    L.seed_everything(cfg.seed, verbose=False)
    dm = build_datamodule(cfg.data, cfg.seed)
    dm.setup()
    model = build_model(cfg, dm.info().as_dict())
    if module_hook is not None:
        module_hook(model)
    kwargs = trainer_kwargs(cfg, model)
    kwargs.pop("precision")
    trainer = L.Trainer(default_root_dir=str(run_dir), logger=build_loggers(cfg, run_dir),
                        callbacks=build_callbacks(cfg, run_dir), plugins=[plugin], **kwargs)
    trainer.fit(model, datamodule=dm)
    return model, trainer


def test_wgan_gp_16_mixed_with_grad_scaling_has_no_nan(tmp_path):
    plugin = fp16_cpu_plugin()
    model, trainer = fit_with_plugin(WGAN_GP, [*NARROW, "model.n_critic=2"], plugin, tmp_path / "r")
    assert trainer.precision_plugin.scaler is plugin.scaler
    penalty = trainer.callback_metrics["train/penalty_gp_epoch"].item()
    assert 0 < penalty < 1e4 and math.isfinite(penalty)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert model.g_steps == 3 and model.d_steps == 6


def test_clipping_sees_unscaled_gradients_under_grad_scaling(tmp_path):
    """With fp16 loss scaling (x65536), clipping must act on unscaled gradients: the total
    norm the optimizer steps with is <= the clip value but not ~65536 times smaller."""
    plugin = fp16_cpu_plugin(init_scale=2.0**10)  # large enough to tell, small enough not to overflow
    norms = []

    def record(model):
        inner = model.on_before_optimizer_step

        def hook(optimizer):
            inner(optimizer)
            grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
            norms.append(torch.linalg.vector_norm(torch.stack(
                [torch.linalg.vector_norm(g) for g in grads])).item())

        model.on_before_optimizer_step = hook

    fit_with_plugin(DCGAN, [*NARROW, "trainer.gradient_clip_val=0.01",
                            "trainer.limit_train_batches=2"], plugin, tmp_path / "r", record)
    assert len(norms) == 4  # 2 batches x (D step + G step)
    assert all(0.001 < n <= 0.01 * (1 + 1e-3) for n in norms), norms
