"""Every experiment config trains a few steps, writes its run dir and samples from its
checkpoint. (Resume is a property of the model: tests/models/test_contract.py resumes every
registered model.)"""

from __future__ import annotations

import json
import math

import pytest
import torch
from omegaconf import OmegaConf

from lit_gen.data.torchvision_sets import DEBIAN_FASHION_MNIST
from lit_gen.run.checkpoint import load_model
from tests.conftest import EXPERIMENTS, fit, tiny_overrides

NEEDS_DOWNLOAD = {"fashion_mnist", "cifar10", "image_folder"}
# installed by `apt-get install dataset-fashion-mnist` (.ci/run does it as root)
OFFLINE = {"fashion_mnist": (DEBIAN_FASHION_MNIST / "t10k-labels-idx1-ubyte.gz").is_file()}


def data_overrides(exp, request) -> list[str]:
    from lit_gen import validation

    cfg = validation.load([exp], ["metrics.names=[]"])  # (a missing classifier fails validation)
    name = cfg.data.name
    if cfg.metrics.classifier_ckpt and cfg.metrics.feature_extractor == "classifier":
        # the experiment names a classifier a user trains once; tests train their own
        ckpt = request.getfixturevalue("classifier_factory")(name, cfg.data.image_size)
        return [f"metrics.classifier_ckpt={ckpt}"] + data_overrides_for(name, request)
    return data_overrides_for(name, request)


def data_overrides_for(name, request) -> list[str]:
    if name == "mnist":
        return [f"data.root={request.getfixturevalue('mnist_root')}", "data.download=false"]
    if OFFLINE.get(name):
        return []
    if name in NEEDS_DOWNLOAD:
        pytest.skip(f"{name} must be downloaded; not available on this machine")
    return []


@pytest.mark.parametrize("exp", EXPERIMENTS, ids=[e.stem for e in EXPERIMENTS])
def test_experiment_trains_and_samples(exp, tmp_path, request):
    extra = data_overrides(exp, request)
    run_dir = tmp_path / "run"
    fit([exp], tiny_overrides(run_dir, epochs=1) + extra)

    for name in ("config.yaml", "metrics.json", "metrics.csv", "checkpoints/last.ckpt"):
        assert (run_dir / name).is_file(), name
    assert list((run_dir / "samples").glob("*_final.png"))
    saved = OmegaConf.load(run_dir / "config.yaml")
    assert saved.experiment == exp.stem
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epoch"] == 1
    assert metrics["g_step"] >= 1
    losses = {k: v for k, v in metrics.items() if k.startswith("train/")}
    assert losses and all(isinstance(v, float) and math.isfinite(v) for v in losses.values())

    model = load_model(run_dir / "checkpoints" / "last.ckpt")
    x = model.sample(5)
    assert x.shape == (5, *model.data_shape)
    assert torch.isfinite(x).all()
