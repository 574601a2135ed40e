"""Dynamic binarization: re-drawn at every read, mean equal to the intensities."""

from __future__ import annotations

import pytest
import torch

from lit_gen import validation
from lit_gen.data import build_datamodule
from lit_gen.data.base import DeviceBatches, TensorPairDataset
from lit_gen.data.binarize import binarization_of, dynamic_binarize
from lit_gen.errors import ConfigError


def test_dynamic_binarization_mean_equals_intensities():
    x = torch.linspace(-1, 1, 11).repeat(20000, 1)  # intensities 0, 0.1, ..., 1
    b = dynamic_binarize(x, torch.Generator().manual_seed(0))
    assert set(b.unique().tolist()) == {-1.0, 1.0}
    p = (b + 1).mean(0) / 2
    assert p.numpy() == pytest.approx(((x[0] + 1) / 2).numpy(), abs=0.01)
    assert p[0] == 0.0 and p[-1] == 1.0


def test_dataset_redraws_each_read_and_device_batches_too():
    x = torch.zeros(64, 1, 4, 4)  # intensity 1/2 everywhere
    ds = TensorPairDataset(x, torch.zeros(64, dtype=torch.long), binarize=True)
    a, _ = ds.__getitems__(list(range(64)))
    b, _ = ds.__getitems__(list(range(64)))
    assert not torch.equal(a, b) and (a.mean().abs() < 0.1)
    batches = DeviceBatches(x, torch.zeros(64, dtype=torch.long), 64, shuffle=False, binarize=True)
    batches.set_epoch(0)
    e0 = next(iter(batches))[0]
    batches.set_epoch(1)
    e1 = next(iter(batches))[0]
    assert set(e0.unique().tolist()) == {-1.0, 1.0} and not torch.equal(e0, e1)
    batches.set_epoch(0)
    assert torch.equal(next(iter(batches))[0], e0)  # seeded by (seed, epoch): reproducible


def test_datamodule_keeps_intensities_and_batches_are_binary():
    cfg = validation.load([], ["data.name=digits", "data.binarize=true", "data.binarization=dynamic"])
    dm = build_datamodule(cfg.data)
    dm.setup()
    assert len(dm.x_train.unique()) > 2  # grey intensities kept
    xb, _ = next(iter(dm.train_dataloader()))
    assert set(xb.unique().tolist()) <= {-1.0, 1.0}
    static = build_datamodule(validation.load([], ["data.name=digits", "data.binarize=true"]).data)
    static.setup()
    assert set(static.x_train.unique().tolist()) == {-1.0, 1.0}
    assert binarization_of(cfg.data) == "dynamic" and binarization_of(static.cfg) == "threshold"


def test_unknown_binarization_is_refused():
    with pytest.raises(ConfigError, match="Valid binarizations: threshold, dynamic"):
        validation.load([], ["data.binarize=true", "data.binarization=random"])
