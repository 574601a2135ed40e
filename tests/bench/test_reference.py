"""`lit_gen.bench reference`: the real-vs-real floor and uniform noise under a run's protocol,
checked against an independent numpy/scipy FID on the classifier's features."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import linalg

from lit_gen import bench, validation
from lit_gen.bench.reference import other_split, reference_rows, uniform_noise
from lit_gen.data import build_datamodule
from lit_gen.metrics.fidelity import to_uint8_rgb
from lit_gen.nets.classifier import load_classifier


def numpy_fid(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(ca @ cb).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(ca + cb - 2 * covmean))


def features(net, x: torch.Tensor) -> np.ndarray:
    u8 = to_uint8_rgb(x)  # what every sample goes through before the extractor
    with torch.no_grad():
        return net.features(u8.float().div(127.5).sub(1.0).mean(1, keepdim=True)).double().numpy()


@pytest.fixture
def cfg(digits_classifier, tmp_path):
    return validation.load([], ["data.name=digits", "metrics.names=[fid]",
                                "metrics.num_samples=200", "metrics.feature_extractor=classifier",
                                f"metrics.classifier_ckpt={digits_classifier}",
                                f"metrics.cache_dir={tmp_path / 'cache'}"])


def test_floor_and_noise_match_an_independent_fid(cfg, digits_classifier):
    rows = {r["name"]: r for r in reference_rows(cfg)}
    dm = build_datamodule(cfg.data, seed=cfg.seed)
    dm.setup()
    net = load_classifier(digits_classifier)
    real = features(net, dm.split("train")[0])
    test = features(net, dm.split("test")[0][:200])
    noise = features(net, uniform_noise(200, (1, 8, 8), cfg.seed))
    floor = rows["real data"]["metrics"]["fid"]
    assert floor == pytest.approx(numpy_fid(test, real), rel=2e-3)
    assert rows["uniform noise"]["metrics"]["fid"] == pytest.approx(numpy_fid(noise, real), rel=2e-3)
    assert rows["uniform noise"]["metrics"]["fid"] > 10 * floor
    assert rows["real data"]["protocol"]["n_generated"] == 200
    assert rows["real data"]["metrics"]["fid_n200"] == floor  # FID at its n, for equal-n ratios
    assert "200 images of the test split vs the train split" == rows["real data"]["what"]


def test_other_split_and_noise_range(cfg):
    dm = build_datamodule(cfg.data, seed=0)
    assert other_split(dm, "train") == "test" and other_split(dm, "test") == "train"
    x = uniform_noise(1000, (1, 4, 4), 0)
    assert x.min() >= -1 and x.max() <= 1 and x.mean().item() == pytest.approx(0.0, abs=0.02)
    assert torch.equal(x, uniform_noise(1000, (1, 4, 4), 0))


def test_reference_command_writes_what_the_table_reads(digits_classifier, tmp_path, capsys):
    out = tmp_path / "ref.json"
    args = ["reference", "--config", "conf/data/digits8.yaml", "--out", str(out),
            "metrics.names=[fid]", "metrics.num_samples=100", "metrics.feature_extractor=classifier",
            f"metrics.classifier_ckpt={digits_classifier}", f"metrics.cache_dir={tmp_path / 'c'}"]
    assert bench.main(args) == 0
    data = json.loads(out.read_text())
    assert [r["name"] for r in data["rows"]] == ["real data", "uniform noise"]
    assert data["dataset"] == "digits" and data["format"] == "lit_gen.reference/1"
    first = out.read_bytes()
    assert bench.main(args) == 0
    assert out.read_bytes() == first  # deterministic: committed next to the table
    assert bench.main(["reference", "--config", "conf/data/digits8.yaml",
                       "--out", str(tmp_path / "x.json")]) == 2
    assert "names no metrics" in capsys.readouterr().err
