"""The VAE family and hybrids: closed-form loss terms, likelihood estimates (ELBO, IWAE)
against independent references (numpy / scipy), schedules, grids, optimizers."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import stats

from lit_gen.losses.vae import (
    bernoulli_log_likelihood,
    gaussian_kl,
    gaussian_log_density,
    imq_kernel,
    imq_mmd,
    mmd,
    standard_normal_log_density,
)
from tests.conftest import ROOT, TINY_BATCHES, fit, tiny_overrides

EXP = ROOT / "conf" / "experiment"


# (training, resume and sampling of every model, and the logged ELBO's consistency:
# tests/models/test_contract.py; every experiment file: tests/test_experiments.py)
@pytest.fixture(scope="module")
def mnist_unpacked(mnist_root, tmp_path_factory) -> Path:
    """MNIST/raw/ with the idx files decompressed, as torchvision reads them offline."""
    import gzip
    import shutil

    root = tmp_path_factory.mktemp("mnist_unpacked")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for src in (mnist_root / "MNIST" / "raw").glob("*.gz"):
        with gzip.open(src, "rb") as f, open(raw / src.stem, "wb") as out:
            shutil.copyfileobj(f, out)
    return root


def test_mnist_from_unpacked_idx_files_trains_and_samples(tmp_path, mnist_unpacked):
    """torchvision's offline layout with decompressed idx files (the .gz layout: every
    *_mnist experiment in tests/test_experiments.py)."""
    from lit_gen.run.checkpoint import load_model

    run = tmp_path / "run"
    fit([EXP / "vae_mnist.yaml"],
        tiny_overrides(run) + [f"data.root={mnist_unpacked}", "data.download=false"])
    model = load_model(run / "checkpoints" / "last.ckpt")
    assert model.sample(3).shape == (3, 1, 28, 28)


def test_cvae_sample_command_writes_requested_labels(tmp_path):
    from lit_gen import sample

    run = tmp_path / "run"
    fit([EXP / "cvae_digits.yaml"], tiny_overrides(run))
    out = tmp_path / "s.npz"
    assert sample.main(["--ckpt", str(run / "checkpoints" / "last.ckpt"), "--labels", "7,2,9",
                        "--n", "7", "--out", str(out)]) == 0
    data = np.load(out)
    assert data["y"].tolist() == [7, 2, 9, 7, 2, 9, 7]
    assert data["x"].shape == (7, 1, 8, 8)


# --- config errors -----------------------------------------------------------------------------
@pytest.mark.parametrize("override, words", [
    ("data.binarize=false", "data.binarize=true"),
    ("model.generator.out_activation=tanh", "out_activation=none"),
    ("model.params.likelihood=poisson", "bernoulli, gaussian"),
    ("model.params.capacity_steps=100", "capacity_max"),
    ("model.params.learn_std=true", "likelihood=gaussian"),
])
def test_vae_config_errors_exit_2_and_write_nothing(override, words, tmp_path, capsys):
    from lit_gen import fit as fit_mod

    run = tmp_path / "run"
    code = fit_mod.main(["--config", str(EXP / "vae_digits.yaml"), f"run.dir={run}", override])
    assert code == 2
    assert words in capsys.readouterr().err
    assert not run.exists()


# --- closed-form loss terms -------------------------------------------------------------------
def test_gaussian_kl_matches_hand_and_numpy_values():
    # KL(N(1, 2^2) || N(0, 1)) = 0.5 * (4 + 1 - 1 - ln 4)
    kl = gaussian_kl(torch.tensor([[1.0]]), torch.tensor([[math.log(4.0)]]))
    assert kl.item() == pytest.approx(0.5 * (4.0 - math.log(4.0)), rel=1e-6)
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    s1, s2 = rng.uniform(0.2, 2.0, size=(4, 3)), rng.uniform(0.2, 2.0, size=(4, 3))
    ref = (np.log(s2 / s1) + (s1**2 + (mu1 - mu2) ** 2) / (2 * s2**2) - 0.5).sum(1)
    got = gaussian_kl(*(torch.tensor(a) for a in (mu1, 2 * np.log(s1), mu2, 2 * np.log(s2))))
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10)
    same = gaussian_kl(torch.tensor(mu1), torch.tensor(np.log(s1)), torch.tensor(mu1),
                       torch.tensor(np.log(s1)))
    np.testing.assert_allclose(same.numpy(), 0.0, atol=1e-12)


def test_log_likelihoods_match_scipy():
    rng = np.random.default_rng(1)
    logits = rng.normal(scale=3, size=(5, 7))
    target = rng.integers(0, 2, size=(5, 7)).astype(float)
    ref = stats.bernoulli.logpmf(target, 1 / (1 + np.exp(-logits))).sum(1)
    got = bernoulli_log_likelihood(torch.tensor(logits), torch.tensor(target))
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-9)

    x, mean = rng.normal(size=(5, 7)), rng.normal(size=(5, 7))
    std = rng.uniform(0.1, 3.0, size=(5, 7))
    ref = stats.norm.logpdf(x, mean, std).sum(1)
    got = gaussian_log_density(torch.tensor(x), torch.tensor(mean), torch.tensor(2 * np.log(std)))
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-10)
    ref = stats.multivariate_normal(np.zeros(7), np.eye(7)).logpdf(x)
    np.testing.assert_allclose(standard_normal_log_density(torch.tensor(x)).numpy(), ref, rtol=1e-10)


def test_imq_kernel_values():
    x = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([[1.0, 1.0], [0.0, 1.0], [1.0, 2.0]])
    # C / (C + ||x - y||^2), C = 2: distances^2 [[2, 1, 5], [0, 1, 1]]
    expected = torch.tensor([[2 / 4, 2 / 3, 2 / 7], [1.0, 2 / 3, 2 / 3]])
    torch.testing.assert_close(imq_kernel(x, y, 2.0), expected)
    assert torch.diagonal(imq_kernel(y, y, 0.3)).tolist() == pytest.approx([1.0] * 3)


def _numpy_mmd(x, y, c, unbiased):
    k = lambda a, b: c / (c + ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))  # noqa: E731
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    n, m = len(x), len(y)
    if not unbiased:
        return kxx.mean() + kyy.mean() - 2 * kxy.mean()
    if n == m:  # Gretton et al. 2012, Lemma 6: mean over i != j of h(z_i, z_j)
        h = kxx + kyy - kxy - kxy.T
        return (h.sum() - np.trace(h)) / (n * (n - 1))
    return ((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
            - 2 * kxy.mean())


@pytest.mark.parametrize("unbiased", [True, False])
def test_mmd_identical_sets_is_zero_and_matches_numpy(unbiased):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(12, 3))
    k = lambda a, b: imq_kernel(torch.tensor(a), torch.tensor(b), 6.0)  # noqa: E731
    assert mmd(k(x, x), k(x, x), k(x, x), unbiased).item() == pytest.approx(0.0, abs=1e-12)
    for y in (rng.normal(loc=0.5, size=(12, 3)), rng.normal(size=(9, 3))):
        got = mmd(k(x, x), k(y, y), k(x, y), unbiased).item()
        assert got == pytest.approx(_numpy_mmd(x, y, 6.0, unbiased), rel=1e-9)
    # WAE's sum over scales of C = 2 * d * sigma^2
    y = rng.normal(loc=1.0, size=(12, 3))
    scales = (0.5, 1.0, 2.0)
    got = imq_mmd(torch.tensor(x), torch.tensor(y), prior_var=1.0, scales=scales, unbiased=unbiased)
    ref = sum(_numpy_mmd(x, y, 2 * 3 * 1.0 * s, unbiased) for s in scales)
    assert got.item() == pytest.approx(ref, rel=1e-9)
    assert ref > 0.05  # shifted sets are far apart


# --- likelihood estimates on a linear-Gaussian VAE with a known marginal ------------------
def _linear_gaussian_vae(q_shift: float = 0.0, q_logvar_shift: float = 0.0):
    """A VAE with decoder x = W z + b + sigma * eps (so p(x) = N(b, W W^T + sigma^2 I)) and an
    encoder set to the exact posterior (W has orthogonal columns, so it is diagonal), then
    optionally moved off it."""
    from lit_gen.models.vae import VAE

    d, latent, sigma = 5, 2, 0.5
    model = VAE(data_info={"name": "toy", "kind": "toy", "shape": [d], "num_classes": 0},
                latent_dim=latent, likelihood="gaussian", decoder_std=sigma,
                generator={"name": "mlp", "hidden": [], "norm": "none", "out_activation": "none"},
                encoder={"name": "mlp", "hidden": []}).double()
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(d, latent)))
    w, b = q * np.array([2.0, 0.7]), rng.normal(size=d)
    post_var = 1.0 / (1.0 + (w**2).sum(0) / sigma**2)  # diagonal since W^T W is diagonal
    a = post_var[:, None] * w.T / sigma**2  # posterior mean = a (x - b)
    dec, enc = model.generator.net[0], model.encoder.head
    with torch.no_grad():
        dec.weight.copy_(torch.tensor(w)), dec.bias.copy_(torch.tensor(b))
        enc.weight.zero_(), enc.bias.zero_()
        enc.weight[:latent].copy_(torch.tensor(a))
        enc.bias[:latent].copy_(torch.tensor(-a @ b + q_shift))
        enc.bias[latent:].copy_(torch.tensor(np.log(post_var) + q_logvar_shift))
    marginal = stats.multivariate_normal(b, w @ w.T + sigma**2 * np.eye(d))
    x = marginal.rvs(size=6, random_state=4)
    return model, torch.tensor(x), marginal.logpdf(x), (a, b, post_var)


def _mean_and_se(draws: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per-example mean and standard error over repeated estimates (R, B)."""
    return draws.mean(0).numpy(), (draws.std(0) / math.sqrt(len(draws))).numpy()


def test_iwae_equals_exact_log_likelihood_with_the_true_posterior():
    model, x, log_px, _ = _linear_gaussian_vae()
    torch.manual_seed(0)
    for k, chunk in ((1, 16384), (50, 7), (1000, 64)):  # one sample per pass when chunk < B
        np.testing.assert_allclose(model.iwae_log_likelihood(x, k=k, chunk=chunk).numpy(),
                                   log_px, rtol=1e-8)
    mean, se = _mean_and_se(torch.stack([model.elbo(x) for _ in range(4000)]))
    assert np.all(np.abs(mean - log_px) < 4 * se)  # unbiased: E[ELBO] = log p(x) here
    assert np.all(se < 0.05)


def test_iwae_increases_with_k_towards_log_px_with_a_poor_posterior():
    model, x, log_px, (a, b, post_var) = _linear_gaussian_vae(q_shift=0.6, q_logvar_shift=1.0)
    torch.manual_seed(0)
    # E[ELBO] = log p(x) - KL(q || exact posterior), both diagonal Gaussians
    mu_q = (x.numpy() - b) @ a.T + 0.6
    mu_p = (x.numpy() - b) @ a.T
    gap = gaussian_kl(torch.tensor(mu_q), torch.tensor(np.log(post_var) + 1.0),
                      torch.tensor(mu_p), torch.tensor(np.log(post_var))).numpy()
    elbo, se = _mean_and_se(torch.stack([model.elbo(x) for _ in range(4000)]))
    assert np.all(np.abs(elbo - (log_px - gap)) < 4 * se) and np.all(se < 0.1)
    reps = {1: 2000, 10: 20, 100: 20, 5000: 20}
    bounds = {k: torch.stack([model.iwae_log_likelihood(x, k=k) for _ in range(r)]).mean().item()
              for k, r in reps.items()}
    assert bounds[1] == pytest.approx(elbo.mean(), abs=0.15)  # IWAE_1 is unbiased for the ELBO
    assert bounds[1] < bounds[10] < bounds[100] < bounds[5000]
    assert bounds[5000] == pytest.approx(log_px.mean(), abs=0.02)
    assert log_px.mean() - bounds[1] > 0.5  # the gap the bound closes is real


@pytest.fixture(scope="module")
def trained_digits(tmp_path_factory):
    """A VAE and a CVAE briefly trained on the whole digits training split (~10 s each)."""
    out = {}
    for name in ("vae", "cvae"):
        run = tmp_path_factory.mktemp(name)
        fit([EXP / f"{name}_digits.yaml"],
            [f"run.dir={run}", "trainer.max_epochs=12", "trainer.accelerator=cpu",
             "trainer.devices=1", "trainer.enable_progress_bar=false",
             "trainer.enable_model_summary=false", "run.sample_every_n_epochs=1000"])
        out[name] = run / "checkpoints" / "last.ckpt"
    return out


def _datamodule(ckpt: Path):
    from lit_gen.data import build_datamodule
    from lit_gen.run.checkpoint import stored_config

    cfg = stored_config(ckpt)
    return build_datamodule(cfg.data, seed=cfg.seed)


def test_iwae_bound_above_elbo_and_increasing_on_trained_vae(trained_digits):
    from lit_gen.run.checkpoint import load_model

    model = load_model(trained_digits["vae"])
    x, _ = _datamodule(trained_digits["vae"]).split("test")
    torch.manual_seed(0)
    elbo = torch.stack([model.elbo(x) for _ in range(20)]).mean().item()  # (297,) per draw
    bounds = {k: torch.stack([model.iwae_log_likelihood(x, k=k) for _ in range(4)]).mean().item()
              for k in (1, 10, 100)}
    assert -40.0 < elbo < -10.0  # binarised 8x8 digits: 64 binary pixels
    assert bounds[1] == pytest.approx(elbo, abs=0.3)
    assert bounds[1] < bounds[10] < bounds[100]
    assert 0.1 < bounds[100] - elbo < 5.0


def test_trained_cvae_samples_show_the_requested_labels(trained_digits):
    """A classifier fitted on real digits recognises the requested class in CVAE samples;
    the same samples scored against shuffled labels are at chance."""
    from sklearn.linear_model import LogisticRegression

    from lit_gen.run.checkpoint import load_model

    model = load_model(trained_digits["cvae"])
    xr, yr = _datamodule(trained_digits["cvae"]).split("train")
    clf = LogisticRegression(max_iter=2000).fit(xr.flatten(1).numpy(), yr.numpy())
    labels = torch.arange(10).repeat_interleave(30)
    torch.manual_seed(0)
    pred = clf.predict(model.sample(300, labels).flatten(1).numpy())
    assert 0.45 < (pred == labels.numpy()).mean() <= 1.0  # chance: 0.1; 0.79 after 100 epochs
    assert (pred == labels[torch.randperm(300)].numpy()).mean() < 0.25


# --- schedules and grids --------------------------------------------------------------------
def _digits_vae(**params):
    from lit_gen.models.vae import VAE

    return VAE(data_info={"name": "digits", "kind": "image", "shape": [1, 8, 8], "num_classes": 10},
               latent_dim=4, generator={"name": "mlp", "hidden": [32], "out_activation": "none"},
               encoder={"name": "mlp", "hidden": [32]}, n_grid=16, **params)


def test_kl_warmup_and_capacity_schedules():
    model = _digits_vae(beta=4.0, kl_warmup_steps=500)
    for steps, weight in ((0, 0.0), (250, 2.0), (500, 4.0), (2000, 4.0)):
        model.g_steps = steps
        assert model.kl_weight(0) == pytest.approx(weight)
    model = _digits_vae(beta=1000.0, capacity_max=25.0, capacity_steps=15000)
    for steps, c in ((0, 0.0), (7500, 12.5), (15000, 25.0), (30000, 25.0)):
        model.g_steps = steps
        assert model.capacity() == pytest.approx(c)


def test_sample_grids_put_inputs_above_reconstructions():
    from lit_gen.data import build_datamodule
    from lit_gen.validation import load

    cfg = load([str(EXP / "vae_digits.yaml")])
    dm = build_datamodule(cfg.data, seed=0)
    model = _digits_vae()
    grids = model.sample_grids()  # no trainer: prior samples and a noise interpolation
    assert set(grids) == {"samples", "interpolation"}
    assert grids["interpolation"].x.shape == (80, 1, 8, 8) and grids["interpolation"].nrow == 10
    model._trainer = SimpleNamespace(datamodule=dm)
    grids = model.sample_grids()
    rec = grids["reconstructions"]
    x_val = dm.split("val")[0][:32]
    assert rec.x.shape == (64, 1, 8, 8) and rec.nrow == 8
    torch.testing.assert_close(rec.x[0:8], x_val[0:8])
    torch.testing.assert_close(rec.x[16:24], x_val[8:16])
    with torch.no_grad():
        model.eval()
        expected = model.decode(model.posterior(x_val[8:16])[0])
    torch.testing.assert_close(rec.x[24:32], expected)
    # interpolation rows run from the decoded mean of val image 0 to that of image 1
    with torch.no_grad():
        ends = model.decode(model.posterior(x_val[0:2])[0])
    torch.testing.assert_close(grids["interpolation"].x[[0, 9]], ends)


def test_kl_warmup_in_epochs_during_training(tmp_path):
    run = tmp_path / "run"
    fit([EXP / "beta_vae_digits.yaml"], tiny_overrides(run, epochs=2) + [
        "model.params.kl_warmup_steps=0", "model.params.kl_warmup_epochs=4"])
    metrics = json.loads((run / "metrics.json").read_text())
    # epoch 1 (0-based), batch i of n: weight = beta * (1 + i/n) / 4, beta = 2; the logged
    # epoch value is the mean over i = 0..n-1
    n = TINY_BATCHES
    assert metrics["train/kl_weight"] == pytest.approx(2.0 * (1 + (n - 1) / (2 * n)) / 4, rel=1e-6)


@pytest.mark.parametrize("name, e_index", [("aae", 2), ("vaegan", 0)])
def test_encoder_optimizer_defaults_to_g_optim(name, e_index):
    from lit_gen.models import MODELS
    from lit_gen.models.optim import default_optim

    cls = MODELS.get(name)
    nets = {"encoder": {"name": "mlp", "hidden": [16]},
            "discriminator": {"name": "mlp", "hidden": [16]},
            "generator": {"name": "mlp", "hidden": [16]}}
    info = {"name": "digits", "kind": "image", "shape": [1, 8, 8], "num_classes": 10}
    g = default_optim(lr=3e-3, betas=[0.9, 0.99])
    opts, _ = cls(data_info=info, latent_dim=4, g_optim=g, **nets).configure_optimizers()
    assert len(opts) == 3
    assert opts[e_index].defaults["lr"] == pytest.approx(3e-3)
    assert opts[e_index].defaults["betas"] == (0.9, 0.99)
    model = cls(data_info=info, latent_dim=4, g_optim=g, e_optim=default_optim(lr=7e-4), **nets)
    opts, _ = model.configure_optimizers()
    assert opts[e_index].defaults["lr"] == pytest.approx(7e-4)
    # the encoder's optimizer holds exactly the encoder's parameters
    assert {id(p) for p in opts[e_index].param_groups[0]["params"]} == \
        {id(p) for p in model.encoder.parameters()}
