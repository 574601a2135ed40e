"""The GAN zoo (CGAN, AC-GAN, InfoGAN, EBGAN, BEGAN, SNGAN, R1): loss terms against
hand-computed values, BEGAN's k_t through a resume, conditional sampling, the docs example.
(Training, resume and sampling of every model: tests/models/test_contract.py.)"""

from __future__ import annotations

import importlib.util
import json
import math
import re

import numpy as np
import pytest
import torch
from scipy import stats

from lit_gen import validation
from lit_gen.errors import ConfigError
from lit_gen.losses.auxiliary import class_terms, info_terms
from lit_gen.losses.energy import (
    began_convergence,
    began_k_update,
    ebgan_d_loss,
    pullaway_term,
)
from lit_gen.models import MODELS, Batch, build_model
from lit_gen.nets import AUTOENCODERS, build_net
from lit_gen.nets.projection import ProjectionDiscriminator
from lit_gen.run.checkpoint import load_model, read_checkpoint
from tests.conftest import ROOT, TINY_BATCHES, fit, tiny_overrides

CONF = ROOT / "conf"
# tests/models/test_contract.py trains, resumes and samples every registered model and
# tests/test_experiments.py every experiment file; here: model-specific checks, and the
# CIFAR-10 configs one step on random 3x32x32 data.
CIFAR_EXPERIMENTS = sorted((CONF / "experiment").glob("*_cifar10.yaml"))
BATCHES = TINY_BATCHES  # training batches per epoch in a tiny run
DIGITS16 = {"name": "digits", "kind": "image", "shape": [1, 16, 16], "num_classes": 10}
CIFAR10 = {"name": "cifar10", "kind": "image", "shape": [3, 32, 32], "num_classes": 10}


def make_model(model_yaml: str, overrides=(), data_info=DIGITS16):
    cfg = validation.load([str(CONF / "model" / f"{model_yaml}.yaml")], list(overrides))
    torch.manual_seed(0)
    return build_model(cfg, data_info)


def real_batch(n: int = 8, shape=(1, 16, 16), seed: int = 0) -> Batch:
    gen = torch.Generator().manual_seed(seed)
    return Batch(torch.rand(n, *shape, generator=gen) * 2 - 1,
                 torch.randint(10, (n,), generator=gen))


# --- every model has a digits and an MNIST experiment ---------------------------------------
def test_every_model_has_digits_and_mnist_experiments():
    stems = {p.stem for p in (CONF / "experiment").glob("*.yaml")}
    assert {f"{m}_{d}" for m in MODELS.names() for d in ("digits", "mnist")} <= stems
    assert {"cgan", "acgan", "sngan", "r1gan", "dcgan", "wgan_gp"} == {
        p.stem.removesuffix("_cifar10") for p in CIFAR_EXPERIMENTS}


@pytest.mark.parametrize("exp", CIFAR_EXPERIMENTS, ids=lambda p: p.stem)
def test_cifar10_experiments_build_and_step(exp):
    """Without the CIFAR files: the config validates and one D/G step works at 3x32x32."""
    cfg = validation.load([str(exp)], ["data.download=false"])
    torch.manual_seed(0)
    model = build_model(cfg, CIFAR10)
    real = real_batch(4, (3, 32, 32))
    d_out = model.discriminator_loss(real, model.generate_fake(4))
    g_out = model.generator_loss(model.generate_fake(4), real)
    (d_out.loss + g_out.loss).backward()
    assert torch.isfinite(d_out.loss) and torch.isfinite(g_out.loss)
    labels = torch.arange(4) if model.conditional else None
    assert model.sample(4, labels).shape == (4, 3, 32, 32)


# --- EBGAN / BEGAN: closed forms -------------------------------------------------------
def test_pullaway_term_closed_forms():
    assert pullaway_term(torch.eye(4) * 3.0).item() == pytest.approx(0.0, abs=1e-7)
    same = torch.tensor([[1.0, 2.0, -2.0]]).repeat(5, 1)
    assert pullaway_term(same).item() == pytest.approx(1.0, abs=1e-6)
    # two codes at 60 degrees: cos^2 = 1/4 on both off-diagonal pairs -> (2 * 1/4) / (2 * 1)
    h = torch.tensor([[1.0, 0.0], [0.5, math.sqrt(3) / 2]])
    assert pullaway_term(h).item() == pytest.approx(0.25, abs=1e-6)
    # 3 codes: e1, e1, e2 -> pairs (1,2),(2,1) have cos^2 1, the other 4 have 0: 2 / 6
    h = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 5.0]])
    assert pullaway_term(h).item() == pytest.approx(1 / 3, abs=1e-6)
    with pytest.raises(ValueError):
        pullaway_term(torch.ones(1, 3))


def test_ebgan_margin_loss_hand_values():
    e_real, e_fake = torch.tensor([0.2, 0.4]), torch.tensor([0.5, 1.5])
    # 0.3 + mean(max(0, 1 - 0.5), max(0, 1 - 1.5)) = 0.3 + 0.25
    assert ebgan_d_loss(e_real, e_fake, 1.0).item() == pytest.approx(0.55, abs=1e-6)
    # m = 2: 0.3 + mean(1.5, 0.5)
    assert ebgan_d_loss(e_real, e_fake, 2.0).item() == pytest.approx(1.3, abs=1e-6)


def test_began_k_update_and_convergence_hand_values():
    # 0.1 + 0.001 * (0.5 * 0.4 - 0.1)
    assert began_k_update(0.1, 0.4, 0.1, gamma=0.5, lambda_k=0.001).item() == pytest.approx(
        0.1001, abs=1e-7)
    # 0.3 + 0.01 * (0.7 * 0.2 - 0.3)
    assert began_k_update(0.3, 0.2, 0.3, gamma=0.7, lambda_k=0.01).item() == pytest.approx(
        0.2984, abs=1e-7)
    assert began_k_update(0.9995, 1.0, 0.0, 0.5, 0.01).item() == pytest.approx(1.0, abs=0)
    assert began_k_update(0.0005, 0.0, 1.0, 0.5, 0.01).item() == pytest.approx(0.0, abs=0)
    assert began_convergence(0.4, 0.1, 0.5).item() == pytest.approx(0.5, abs=1e-7)
    assert began_convergence(0.4, 0.5, 0.5).item() == pytest.approx(0.7, abs=1e-7)


def test_began_losses_and_k_step_on_the_model():
    model = make_model("began")
    model.k.fill_(0.3)
    real, fake = real_batch(), model.generate_fake(8)
    with torch.no_grad():
        l_real = (model.discriminator(real.x).recon - real.x).abs().mean().item()
        l_fake = (model.discriminator(fake.x).recon - fake.x).abs().mean().item()
        d_out = model.discriminator_loss(real, fake)
    assert d_out.loss.item() == pytest.approx(l_real - 0.3 * l_fake, rel=1e-5)
    assert d_out.logs["m_global"].item() == pytest.approx(l_real + abs(0.5 * l_real - l_fake),
                                                          rel=1e-5)
    assert d_out.logs["k"].item() == pytest.approx(0.3)
    model.after_discriminator_step(d_out)
    assert model.k.item() == pytest.approx(0.3 + 0.001 * (0.5 * l_real - l_fake), abs=1e-6)
    assert "k" in model.state_dict()


def test_began_k_survives_checkpoint_and_resume(tmp_path):
    exp = CONF / "experiment" / "began_digits.yaml"
    run_dir = tmp_path / "run"
    extra = ["model.params.k_init=0.5", "model.params.lambda_k=0.01"]
    fit([exp], tiny_overrides(run_dir) + extra)
    last = run_dir / "checkpoints" / "last.ckpt"
    ckpt = read_checkpoint(last)
    k1 = ckpt["state_dict"]["k"].item()
    assert 0.0 <= k1 <= 1.0 and abs(k1 - 0.5) > 1e-5  # moved from k_init by the D steps
    assert load_model(last).k.item() == pytest.approx(k1, abs=0)
    # resume from a checkpoint whose k is 0.9: training must go on from there
    ckpt["state_dict"]["k"].fill_(0.9)
    torch.save(ckpt, last)
    fit([exp], tiny_overrides(run_dir, 2) + extra + ["resume=last"])
    k2 = read_checkpoint(last)["state_dict"]["k"].item()
    # each step moves k by lambda_k * |gamma L(x) - L(G(z))|, well under 0.01 * 2 here
    assert k2 != pytest.approx(0.9, abs=1e-6) and k2 == pytest.approx(0.9, abs=BATCHES * 0.02)


def test_ebgan_losses_on_the_model():
    model = make_model("ebgan", ["model.params.margin=0.7", "model.params.pt_weight=0.1"])
    real, fake = real_batch(), model.generate_fake(8)
    with torch.no_grad():
        e_real = (model.discriminator(real.x).recon - real.x).pow(2).flatten(1).mean(1)
        out_fake = model.discriminator(fake.x)
        e_fake = (out_fake.recon - fake.x).pow(2).flatten(1).mean(1)
        d_out = model.discriminator_loss(real, fake)
        g_out = model.generator_loss(fake, real)
    expected_d = e_real.mean() + torch.clamp(0.7 - e_fake, min=0).mean()
    assert d_out.loss.item() == pytest.approx(expected_d.item(), rel=1e-5)
    unit = torch.nn.functional.normalize(out_fake.code, dim=1).numpy().astype(np.float64)
    cos2 = (unit @ unit.T) ** 2
    pt = (cos2.sum() - np.trace(cos2)) / (8 * 7)
    assert g_out.loss.item() == pytest.approx(e_fake.mean().item() + 0.1 * pt, rel=1e-5)


@pytest.mark.parametrize("name", ["mlp", "dcgan"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_autoencoder_nets_shapes(name, shape):
    ae = build_net({"name": name, "code_dim": 12}, "autoencoder", in_shape=shape)
    out = ae(torch.randn(5, *shape))
    assert out.recon.shape == (5, *shape) and out.code.shape == (5, 12)
    assert set(AUTOENCODERS.names()) == {"dcgan", "mlp"}


# --- AC-GAN / InfoGAN: closed forms ------------------------------------------------------
def test_class_terms_hand_values():
    ce, acc = class_terms(torch.zeros(4, 10), torch.tensor([0, 3, 0, 5]))
    assert ce.item() == pytest.approx(math.log(10), rel=1e-6)
    assert acc.item() == pytest.approx(0.5)  # argmax of equal logits is class 0
    ce, acc = class_terms(torch.tensor([[2.0, 0.0], [0.0, 2.0]]), torch.tensor([0, 0]))
    # -log softmax: log(1 + e^-2) and log(1 + e^2)
    assert ce.item() == pytest.approx((math.log1p(math.exp(-2)) + math.log1p(math.exp(2))) / 2,
                                      rel=1e-6)
    assert acc.item() == pytest.approx(0.5)


def test_info_terms_against_scipy():
    cat_logits = torch.tensor([[[0.0, 0.0, 0.0, 0.0]], [[1.0, 0.0, 0.0, 0.0]]])  # (2, 1, 4)
    cat_codes = torch.tensor([[2], [0]])
    mean = torch.tensor([[0.0, 1.0], [0.5, -1.0]])
    logstd = torch.tensor([[0.0, math.log(2.0)], [math.log(0.5), 0.0]])
    codes = torch.tensor([[0.5, -1.0], [0.0, 0.25]])
    t = info_terms(cat_logits, cat_codes, mean, logstd, codes)
    expected_cat = (math.log(4) + (math.log(math.e + 3) - 1.0)) / 2
    assert t.categorical.item() == pytest.approx(expected_cat, rel=1e-6)
    nll = -stats.norm.logpdf(codes.numpy(), loc=mean.numpy(), scale=np.exp(logstd.numpy()))
    assert t.continuous.item() == pytest.approx(nll.sum(1).mean(), rel=1e-6)
    assert t.accuracy.item() == pytest.approx(0.5)  # sample 0 predicts 0 (!= 2), sample 1 right


def test_acgan_losses_with_zero_head():
    """A zero output layer makes every logit 0: L_S = 2 log 2 (D) / log 2 (G), L_C = log 10."""
    model = make_model("acgan", ["model.params.class_weight=0.5"])
    torch.nn.init.zeros_(model.discriminator.head.weight)
    torch.nn.init.zeros_(model.discriminator.head.bias)
    real = Batch(real_batch().x, torch.tensor([0, 1, 0, 2, 0, 3, 4, 5]))
    fake = model.generate_fake(8, torch.tensor([0, 0, 0, 0, 0, 0, 1, 1]))
    with torch.no_grad():
        d_out = model.discriminator_loss(real, fake)
        g_out = model.generator_loss(fake, real)
    assert d_out.logs["d_adv"].item() == pytest.approx(2 * math.log(2), rel=1e-6)
    assert d_out.logs["d_cls_real"].item() == pytest.approx(math.log(10), rel=1e-6)
    assert d_out.loss.item() == pytest.approx(2 * math.log(2) + 0.5 * 2 * math.log(10), rel=1e-6)
    assert d_out.logs["acc_real"].item() == pytest.approx(3 / 8)
    assert d_out.logs["acc_fake"].item() == pytest.approx(6 / 8)
    assert g_out.loss.item() == pytest.approx(math.log(2) + 0.5 * math.log(10), rel=1e-6)


def test_infogan_losses_with_zero_q_output():
    """Zero Q output: logits 0 (CE = log 10), Gaussian N(0, 1) (NLL = c^2 / 2 + log(2 pi) / 2)."""
    model = make_model("infogan")
    torch.nn.init.zeros_(model.q_head.head.weight)
    torch.nn.init.zeros_(model.q_head.head.bias)
    real, fake = real_batch(), model.generate_fake(8)
    cont = fake.z[:, model.latent_dim + 10:].numpy().astype(np.float64)  # (8, 2)
    assert cont.shape == (8, 2) and np.all(np.abs(cont) <= 1)
    expected_cont = (0.5 * cont**2 + 0.5 * math.log(2 * math.pi)).sum(1).mean()
    with torch.no_grad():
        d_out = model.discriminator_loss(real, fake)
        g_out = model.generator_loss(fake, real)
    assert d_out.logs["info_cat"].item() == pytest.approx(math.log(10), rel=1e-6)
    assert d_out.logs["info_cont"].item() == pytest.approx(expected_cont, rel=1e-5)
    info = math.log(10) + 0.1 * expected_cont  # info_weight 1, cont_weight 0.1 (infogan.yaml)
    assert d_out.loss.item() == pytest.approx(d_out.logs["d_adv"].item() + info, rel=1e-5)
    assert g_out.loss.item() == pytest.approx(g_out.logs["g_adv"].item() + info, rel=1e-5)


def test_infogan_codes_q_optimizer_and_traversal():
    model = make_model("infogan", ["run.n_grid=16"])
    torch.manual_seed(1)
    cat, cont = model.split_codes(model.sample_latent(4000))
    onehots = model.sample_latent(50)[:, model.latent_dim:model.latent_dim + 10]
    assert torch.equal(onehots.sum(1), torch.ones(50))
    assert cat.min() == 0 and cat.max() == 9
    assert cat.float().mean().item() == pytest.approx(4.5, abs=0.2)
    assert cont.abs().max() <= 1.0
    assert cont.mean().item() == pytest.approx(0.0, abs=0.05)
    assert cont.var().item() == pytest.approx(1 / 3, abs=0.03)  # U(-1, 1)

    _, opt_d = model.configure_optimizers()[0]
    d_params = {id(p) for g in opt_d.param_groups for p in g["params"]}
    assert all(id(p) in d_params for p in model.q_head.parameters())
    assert all(id(p) in d_params for p in model.discriminator.parameters())

    z, nrow = model.traversal_latents(1)
    assert nrow == 10 and z.shape == (100, 62 + 12)
    t_cat, t_cont = model.split_codes(z)
    assert torch.equal(t_cat[:, 0], torch.arange(10).repeat_interleave(10))  # row = category
    assert torch.allclose(t_cont[:, 1], torch.linspace(-2, 2, 10).repeat(10))  # column sweep
    assert torch.equal(t_cont[:, 0], torch.zeros(100))
    assert torch.equal(z[:, :62], model.fixed_noise[:1].expand(100, -1))
    grids = model.sample_grids()
    assert set(grids) == {"samples", "traversal", "traversal_c1"}
    assert grids["traversal"].x.shape == (100, 1, 16, 16) and grids["traversal"].nrow == 10
    assert grids["samples"].x.shape == (16, 1, 16, 16)


# --- CGAN: projection, label-dependent sampling, the sample command ------------------------
def test_projection_discriminator_hand_values():
    base = build_net({"name": "mlp", "hidden": [3]}, "discriminator", in_shape=(2,))
    proj = ProjectionDiscriminator(base, num_classes=2)
    with torch.no_grad():
        base.body[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        base.body[0].bias.zero_()
        base.head.weight.copy_(torch.tensor([[1.0, -1.0, 0.5]]))
        base.head.bias.fill_(0.25)
        proj.embed.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, -1.0]]))  # (F, K)
    x = torch.tensor([[1.0, 2.0]])  # features h = (1, 2, 3) (leaky relu of positives)
    # head: 1 - 2 + 1.5 + 0.25 = 0.75; class 0: <(2, 0, 1), h> = 5; class 1: <(0, 1, -1), h> = -1
    out0 = proj(x, torch.tensor([[1.0, 0.0]])).item()
    out1 = proj(x, torch.tensor([[0.0, 1.0]])).item()
    assert (out0, out1) == (pytest.approx(5.75), pytest.approx(-0.25))
    assert proj(x).item() == pytest.approx(0.75)


def test_cgan_discriminator_depends_on_the_label():
    for projection in ("false", "true"):
        model = make_model("cgan", [f"model.params.projection={projection}"])
        x = real_batch(4).x
        with torch.no_grad():
            d0 = model.discriminate(x, torch.zeros(4, dtype=torch.long))
            d1 = model.discriminate(x, torch.ones(4, dtype=torch.long))
        assert d0.shape == (4,) and not torch.allclose(d0, d1)


# A label-revealing generator: a single linear layer whose output is tanh(0.2 k - 0.9) in
# every pixel for label k, whatever z is.
LINEAR_G = "model.generator={name: mlp, hidden: [], norm: none}"


def label_revealing_state(state: dict, latent_dim: int, prefix: str = "generator.") -> dict:
    w = state[f"{prefix}net.0.weight"]
    w.zero_()
    w[:, latent_dim:] = 0.2 * torch.arange(10, dtype=w.dtype)
    state[f"{prefix}net.0.bias"].fill_(-0.9)
    return state


def read_labels(x: torch.Tensor) -> torch.Tensor:
    """The label a label-revealing generator encoded in (N, C, H, W) images."""
    per_image = torch.atanh(x.flatten(1).double()).mean(1)
    return torch.round((per_image + 0.9) / 0.2).long()


def test_conditional_sampling_returns_requested_labels():
    model = make_model("cgan", [LINEAR_G])
    model.generator.load_state_dict(label_revealing_state(
        model.generator.state_dict(), model.latent_dim, prefix=""))
    labels = torch.tensor([7, 7, 1, 0, 9, 3, 3, 5])
    assert torch.equal(read_labels(model.sample(8, labels)), labels)
    random_labels = read_labels(model.sample(500))
    assert random_labels.min() == 0 and random_labels.max() == 9
    # the sample grid: one row per class, 64 // 10 = 6 per row
    grid = model.sample_grids()["samples"]
    assert grid.nrow == 6 and grid.x.shape == (60, 1, 16, 16)
    assert torch.equal(read_labels(grid.x), torch.arange(10).repeat_interleave(6))


def test_sample_command_labels_and_per_class(tmp_path):
    from lit_gen.sample import main as sample_main

    run_dir = tmp_path / "cgan"
    fit([CONF / "experiment" / "cgan_digits.yaml"], tiny_overrides(run_dir) + [LINEAR_G])
    ckpt = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    label_revealing_state(ckpt["state_dict"], ckpt["hyper_parameters"]["latent_dim"])
    torch.save(ckpt, tmp_path / "revealing.ckpt")
    out = tmp_path / "labels.npz"
    assert sample_main(["--ckpt", str(tmp_path / "revealing.ckpt"), "--labels", "0,1,2",
                        "--n", "7", "--out", str(out)]) == 0
    data = np.load(out)
    assert data["y"].tolist() == [0, 1, 2, 0, 1, 2, 0] and data["x"].shape == (7, 1, 16, 16)
    assert read_labels(torch.from_numpy(data["x"])).tolist() == data["y"].tolist()

    out = tmp_path / "per_class.npz"
    assert sample_main(["--ckpt", str(tmp_path / "revealing.ckpt"), "--per-class", "3",
                        "--out", str(out), "--out", str(tmp_path / "grid.png")]) == 0
    data = np.load(out)
    assert data["y"].tolist() == [k for k in range(10) for _ in range(3)]
    assert read_labels(torch.from_numpy(data["x"])).tolist() == data["y"].tolist()
    assert (tmp_path / "grid.png").is_file()


def test_sample_command_on_acgan_and_unconditional_refusal(tmp_path, capsys):
    from lit_gen.sample import main as sample_main

    fit([CONF / "experiment" / "acgan_digits.yaml"], tiny_overrides(tmp_path / "acgan"))
    out = tmp_path / "acgan.npz"
    assert sample_main(["--ckpt", str(tmp_path / "acgan" / "checkpoints" / "last.ckpt"),
                        "--per-class", "2", "--out", str(out)]) == 0
    data = np.load(out)
    assert data["y"].tolist() == [k for k in range(10) for _ in range(2)]
    assert data["x"].shape == (20, 1, 16, 16)

    fit([CONF / "experiment" / "sngan_digits.yaml"], tiny_overrides(tmp_path / "sngan"))
    code = sample_main(["--ckpt", str(tmp_path / "sngan" / "checkpoints" / "last.ckpt"),
                        "--labels", "0,1", "--out", str(tmp_path / "x.npz")])
    assert code == 2 and "conditional" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


# --- config errors ------------------------------------------------------------------------
def test_config_errors_name_the_fix():
    with pytest.raises(ConfigError, match="autoencoder net 'resnet'.*dcgan, mlp"):
        validation.load([str(CONF / "model" / "ebgan.yaml")], ["model.discriminator={name: resnet}"])
    with pytest.raises(ConfigError, match="model.params.margn.*margin"):
        validation.load([str(CONF / "model" / "ebgan.yaml")], ["model.params.margn=2"])
    with pytest.raises(ConfigError, match="n_cat=0 and n_cont=0"):
        make_model("infogan", ["model.params.n_cat=0", "model.params.n_cont=0"])
    with pytest.raises(ConfigError, match="q_head.hiden"):
        make_model("infogan", ["model.params.q_head={name: mlp, hiden: [3]}"])
    with pytest.raises(ConfigError, match="k_init"):
        make_model("began", ["model.params.k_init=1.5"])
    toy = {"name": "ring2d", "kind": "toy", "shape": [2], "num_classes": 0}
    with pytest.raises(ConfigError, match="no labels"):
        make_model("acgan", ["model.generator={name: mlp}", "model.discriminator={name: mlp}"],
                   data_info=toy)


# --- docs/models.md: the "Add a model" example works as written ----------------------------
def test_add_a_model_example_from_docs(tmp_path):
    text = (ROOT / "docs" / "models.md").read_text()
    section = text.split("## Add a model", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    yaml_text = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    (tmp_path / "model").symlink_to(CONF / "model")
    (tmp_path / "data").symlink_to(CONF / "data")
    (tmp_path / "experiment").mkdir()
    exp = tmp_path / "experiment" / "fmgan_digits.yaml"
    exp.write_text(yaml_text)
    module_file = tmp_path / "fmgan_doc_example.py"
    module_file.write_text(code)
    spec = importlib.util.spec_from_file_location("fmgan_doc_example", module_file)
    try:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
        run_dir = fit([exp], tiny_overrides(tmp_path / "run"))
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["g_step"] == BATCHES and math.isfinite(metrics["train/g_loss"])
        assert metrics["train/g_loss"] > 0  # a squared feature distance
        assert load_model(run_dir / "checkpoints" / "last.ckpt").sample(2).shape == (2, 1, 16, 16)
    finally:
        MODELS._entries.pop("fmgan", None)

