"""Ex-post latent samplers: the GMM reproduces a known mixture, the 2-stage VAE the codes'
moments, files round-trip through torch.load(weights_only=True), sample/evaluate use them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lit_gen.metrics.latent_samplers import (
    LATENT_SAMPLERS,
    GMMSampler,
    TwoStageSampler,
    read_sampler,
    save_sampler,
)
from tests.conftest import ROOT, fit, tiny_overrides

WEIGHTS = np.array([0.5, 0.3, 0.2])
MEANS = np.array([[-4.0, 0.0], [3.0, 3.0], [3.0, -3.0]])
COVS = np.array([[[1.0, 0.5], [0.5, 1.0]], [[0.3, 0.0], [0.0, 0.3]], [[0.5, -0.2], [-0.2, 0.4]]])


def known_mixture(n: int, seed: int) -> torch.Tensor:
    g = np.random.default_rng(seed)
    k = g.choice(3, size=n, p=WEIGHTS)
    return torch.from_numpy(np.stack([g.multivariate_normal(MEANS[i], COVS[i]) for i in k]))


def test_gmm_sampler_reproduces_a_known_mixture():
    sampler = GMMSampler(components=3).fit(known_mixture(6000, 0), seed=0)
    order = np.argsort(sampler.means[:, 0].numpy() + 0.1 * sampler.means[:, 1].numpy())
    ref_order = np.argsort(MEANS[:, 0] + 0.1 * MEANS[:, 1])
    assert sampler.weights.numpy()[order] == pytest.approx(WEIGHTS[ref_order], abs=0.03)
    assert sampler.means.numpy()[order] == pytest.approx(MEANS[ref_order], abs=0.1)
    cov = (sampler.chol @ sampler.chol.transpose(1, 2)).numpy()[order]
    assert cov == pytest.approx(COVS[ref_order], abs=0.1)
    # its samples: each component's share and moments, assigned to the nearest true mean
    z = sampler.sample(20000, torch.Generator().manual_seed(1)).double().numpy()
    nearest = np.argmin(((z[:, None] - MEANS[None]) ** 2).sum(-1), axis=1)
    for i in range(3):
        zi = z[nearest == i]
        assert len(zi) / len(z) == pytest.approx(WEIGHTS[i], abs=0.02)
        assert zi.mean(0) == pytest.approx(MEANS[i], abs=0.08)


@pytest.mark.slow
def test_two_stage_sampler_matches_the_codes_moments():
    g = torch.Generator().manual_seed(0)
    a = torch.tensor([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.0, 0.5, 0.3]])
    codes = torch.randn(3000, 3, generator=g) @ a.T + torch.tensor([1.0, -2.0, 0.5])
    sampler = TwoStageSampler(hidden=64, steps=1500).fit(codes, seed=0)
    z = sampler.sample(5000, torch.Generator().manual_seed(1))
    assert z.mean(0).numpy() == pytest.approx(codes.mean(0).numpy(), abs=0.1)
    assert torch.cov(z.T).numpy() == pytest.approx(torch.cov(codes.T).numpy(), abs=0.15)


@pytest.mark.parametrize("name", ["gmm", "two_stage"])
def test_sampler_file_round_trip_is_weights_only(tmp_path, name):
    codes = known_mixture(500, 2).float()
    cls = LATENT_SAMPLERS.get(name)
    sampler = (cls(components=3) if name == "gmm" else cls(hidden=16, steps=20)).fit(codes)
    path = tmp_path / f"m.ckpt.{name}.pt"
    save_sampler(sampler, name, path, "ab" * 32, len(codes))
    torch.load(path, weights_only=True)  # plain tensors and containers only
    data = read_sampler(path)
    again = cls.from_state(data["state"])
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(sampler.sample(50, g1), again.sample(50, g2))
    assert data["n_codes"] == 500 and data["checkpoint_sha256"] == "ab" * 32
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_corrupt_sampler_file_is_a_clear_error(tmp_path):
    from lit_gen.errors import CheckpointError

    bad = tmp_path / "x.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="delete it to refit"):
        read_sampler(bad)


@pytest.fixture(scope="module")
def vae_ckpt(tmp_path_factory):
    run_dir = fit([ROOT / "conf" / "experiment" / "vae_digits.yaml"],
                  tiny_overrides(tmp_path_factory.mktemp("vae") / "run", epochs=2))
    return run_dir / "checkpoints" / "last.ckpt"


@pytest.mark.slow
def test_sample_and_evaluate_with_gmm_sampler(vae_ckpt, tmp_path, digits_classifier):
    from lit_gen.evaluate import main as evaluate
    from lit_gen.sample import main as sample

    out = tmp_path / "s.npz"
    assert sample(["--ckpt", str(vae_ckpt), "--n", "40", "--out", str(out),
                   "--latent-sampler", "gmm"]) == 0
    stored = vae_ckpt.parent / "last.ckpt.gmm.pt"
    assert stored.is_file()
    first = np.load(out)["x"]
    prior = tmp_path / "p.npz"
    assert sample(["--ckpt", str(vae_ckpt), "--n", "40", "--out", str(prior)]) == 0
    assert not np.allclose(first, np.load(prior)["x"])
    mtime = stored.stat().st_mtime_ns
    assert sample(["--ckpt", str(vae_ckpt), "--n", "40", "--out", str(out),
                   "--latent-sampler", "gmm"]) == 0
    assert np.array_equal(first, np.load(out)["x"]) and stored.stat().st_mtime_ns == mtime  # reused

    res = tmp_path / "e.json"
    assert evaluate(["--ckpt", str(vae_ckpt), "--n", "60", "--metrics", "fid,recon_fid",
                     "--latent-sampler", "gmm", "--out", str(res),
                     "metrics.feature_extractor=classifier",
                     f"metrics.classifier_ckpt={digits_classifier}"]) == 0
    m = json.loads(res.read_text())
    assert m["fid"] > 0 and m["recon_fid"] > 0
    p = m["protocol"]
    assert p["latent_sampler"] == "gmm" and p["latent_sampler_file"] == str(stored)
    assert p["recon_fid"]["split"] == "test" and p["recon_fid"]["n"] == 297

    assert sample(["--ckpt", str(vae_ckpt), "--out", str(out), "--latent-sampler", "nope"]) == 2


@pytest.mark.slow
def test_also_latent_samplers_repeat_the_image_metrics_with_each_sampler(tmp_path,
                                                                          digits_classifier):
    """`metrics.also_latent_samplers: [gmm]`: the run's metrics.json has fid (prior) and
    gmm/fid, the latter equal to the Evaluator run by hand with a GMM fitted the same way."""
    from omegaconf import OmegaConf

    from lit_gen import validation
    from lit_gen.data import build_datamodule
    from lit_gen.metrics.evaluator import Evaluator
    from lit_gen.metrics.latent_samplers import prepare_latent_sampler
    from lit_gen.run.checkpoint import load_model

    metric_args = ["metrics.names=[fid,dc]", "metrics.feature_extractor=classifier",
                   f"metrics.classifier_ckpt={digits_classifier}",
                   f"metrics.cache_dir={tmp_path / 'cache'}"]
    run = fit([ROOT / "conf" / "experiment" / "vae_digits.yaml"],
              tiny_overrides(tmp_path / "run", epochs=1) + metric_args
              + ["metrics.also_latent_samplers=[gmm]"])
    m = json.loads((run / "metrics.json").read_text())
    assert {"fid", "density", "coverage", "gmm/fid", "gmm/density", "gmm/coverage"} <= set(m)
    assert m["gmm/fid"] != m["fid"]
    also = m["protocol"]["also_latent_samplers"]["gmm"]
    assert also["latent_sampler"] == "gmm" and also["n_generated"] == m["protocol"]["n_generated"]
    assert m["protocol"]["latent_sampler"] == "prior"

    cfg = validation.load([ROOT / "conf" / "experiment" / "vae_digits.yaml"],
                          tiny_overrides(tmp_path / "run", epochs=1) + metric_args)
    dm = build_datamodule(cfg.data, seed=cfg.seed)
    dm.setup("fit")
    model = load_model(run / "checkpoints" / "last.ckpt")
    sampler, proto = prepare_latent_sampler(model, "gmm", None, dm, seed=cfg.seed)
    evaluator = Evaluator(OmegaConf.merge(cfg.metrics, {"names": ["fid", "dc"]}), dm,
                          seed=cfg.seed, latent_sampler=sampler, latent_sampler_protocol=proto)
    evaluator.prepare()
    values, _ = evaluator.evaluate_model(model, tag=m["g_step"])
    assert values["fid"] == pytest.approx(m["gmm/fid"], rel=1e-6)
    assert values["coverage"] == pytest.approx(m["gmm/coverage"], rel=1e-6)


@pytest.mark.parametrize("experiment, override, words", [
    ("dcgan_digits", ["metrics.also_latent_samplers=[gmm]"], "needs an autoencoder"),
    ("vae_digits", ["metrics.also_latent_samplers=[nope]"], "nope"),
    ("vae_digits", ["metrics.also_latent_samplers=[gmm,gmm]"], "each sampler once"),
])
def test_also_latent_samplers_are_validated(experiment, override, words, digits_classifier):
    from lit_gen import validation
    from lit_gen.errors import ConfigError

    with pytest.raises(ConfigError, match=words):
        validation.load([ROOT / "conf" / "experiment" / f"{experiment}.yaml"],
                        ["metrics.names=[fid]", "metrics.feature_extractor=classifier",
                         f"metrics.classifier_ckpt={digits_classifier}", *override])
