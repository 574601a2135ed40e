"""DataModules: toy geometry, splits, real loaders, clear errors for missing or corrupt data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lit_gen import validation
from lit_gen.data import DATASETS, build_datamodule
from lit_gen.errors import DataError


def data_cfg(**kw):
    cfg = validation.load([], [f"data.{k}={v}" for k, v in kw.items()])
    return cfg.data


def test_ring2d_modes_and_std():
    dm = build_datamodule(data_cfg(name="ring2d", n_samples=4000), seed=1)
    modes = dm.modes()
    assert modes.shape == (8, 2)
    angles = sorted((math.atan2(y, x) % (2 * math.pi)) for x, y in modes.tolist())
    assert angles == pytest.approx([2 * math.pi * k / 8 for k in range(8)], abs=1e-6)
    assert modes.norm(dim=1).tolist() == pytest.approx([1.0] * 8, abs=1e-6)
    dm.setup()
    x, y = dm.split("train")
    offsets = x - modes[y]
    assert offsets.std().item() == pytest.approx(0.01, rel=0.05)
    assert dm.info().shape == (2,) and dm.info().num_classes == 8


def test_grid2d_modes_configurable():
    dm = build_datamodule(data_cfg(name="grid2d", n_samples=1000), seed=0)
    modes = dm.modes()
    assert modes.shape == (25, 2)
    assert sorted(set(modes[:, 0].tolist())) == pytest.approx([-4, -2, 0, 2, 4])
    dm2 = build_datamodule(data_cfg(name="grid2d", radius=2.0, std=0.1), seed=0)
    assert sorted(set(dm2.modes()[:, 1].tolist())) == pytest.approx([-2, -1, 0, 1, 2])
    assert dm2.mode_std == 0.1


def test_toy_data_is_a_function_of_the_seed():
    a = build_datamodule(data_cfg(name="ring2d", n_samples=500), seed=3)
    b = build_datamodule(data_cfg(name="ring2d", n_samples=500), seed=3)
    c = build_datamodule(data_cfg(name="ring2d", n_samples=500), seed=4)
    a.setup(), b.setup(), c.setup()
    assert torch.equal(a.x_train, b.x_train)
    assert not torch.equal(a.x_train, c.x_train)


def test_digits_range_split_and_resize():
    dm = build_datamodule(data_cfg(name="digits", val_fraction=0.2), seed=0)
    dm.setup()
    x, y = dm.split("train")
    xv, _ = dm.split("val")
    xt, yt = dm.split("test")
    assert len(x) + len(xv) == 1500 and len(xt) == 297
    assert len(xv) == 300
    assert x.shape[1:] == (1, 8, 8)
    assert x.min().item() == pytest.approx(-1.0) and x.max().item() == pytest.approx(1.0)
    assert sorted(set(y.tolist())) == list(range(10))
    from sklearn.datasets import load_digits

    ref = load_digits()
    assert yt.tolist() == ref.target[-297:].tolist()
    dm16 = build_datamodule(data_cfg(name="digits", image_size=16), seed=0)
    dm16.setup()
    assert dm16.split("train")[0].shape[1:] == (1, 16, 16)
    assert dm16.info().shape == (1, 16, 16)


def test_split_is_deterministic_and_disjoint():
    a = build_datamodule(data_cfg(name="digits"), seed=5)
    b = build_datamodule(data_cfg(name="digits"), seed=5)
    a.setup(), b.setup()
    assert torch.equal(a.x_val, b.x_val)
    train_rows = {tuple(r) for r in a.x_train.flatten(1).tolist()}
    val_rows = [tuple(r) for r in a.x_val.flatten(1).tolist()]
    # digits has a few exact duplicate images; nearly all val rows must be unseen
    assert sum(r in train_rows for r in val_rows) <= 3


def test_batches_are_pairs_of_tensors():
    dm = build_datamodule(data_cfg(name="digits", batch_size=32), seed=0)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (32, 1, 8, 8) and y.shape == (32,) and y.dtype == torch.long


def test_mnist_from_real_files(mnist_root):
    dm = build_datamodule(data_cfg(name="mnist", root=str(mnist_root), download=False), seed=0)
    dm.setup()
    x, y = dm.split("test")
    assert x.shape == (10000, 1, 28, 28)
    counts = torch.bincount(y, minlength=10).tolist()
    assert counts == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert x.min().item() == pytest.approx(-1.0) and x.max().item() == pytest.approx(1.0)
    assert dm.info().shape == (1, 28, 28)


def test_mnist_missing_offline_is_a_clear_error(tmp_path):
    dm = build_datamodule(data_cfg(name="mnist", root=str(tmp_path), download=False), seed=0)
    with pytest.raises(DataError) as info:
        dm.setup()
    msg = str(info.value)
    assert "train-images-idx3-ubyte.gz" in msg and str(tmp_path) in msg
    assert "data.download" in msg


def test_fit_cli_missing_dataset_exit_2(tmp_path):
    from tests.conftest import run_cli

    proc = run_cli("lit_gen.fit", "--config", "conf/experiment/dcgan_mnist.yaml",
                   f"data.root={tmp_path}/nothing", "data.download=false",
                   f"run.dir={tmp_path}/run")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "MNIST" in proc.stderr
    assert not (tmp_path / "run").exists()


def _write_png(path, value, size=(10, 12), mode="RGB"):
    from PIL import Image

    arr = np.full((size[1], size[0], 3), value, dtype=np.uint8)
    Image.fromarray(arr, "RGB").convert(mode).save(path)


def test_image_folder_with_classes(tmp_path):
    for c, v in (("cats", 0), ("dogs", 255)):
        (tmp_path / c).mkdir()
        for i in range(10):
            _write_png(tmp_path / c / f"{i}.png", v)
    dm = build_datamodule(data_cfg(name="image_folder", root=str(tmp_path), image_size=8), seed=0)
    info = dm.info()
    assert info.shape == (3, 8, 8) and info.num_classes == 2
    dm.setup()
    x, y = dm.x_train, dm.y_train
    xt, yt = dm.split("test")
    assert len(x) + len(dm.x_val) == 18 and len(xt) == 2
    assert torch.all(x[y == 0] == -1.0) and torch.all(x[y == 1] == 1.0)
    grey = build_datamodule(data_cfg(name="image_folder", root=str(tmp_path), image_size=8,
                                     channels=1), seed=0)
    grey.setup()
    assert grey.x_train.shape[1] == 1


def test_image_folder_corrupt_image_named(tmp_path):
    for i in range(3):
        _write_png(tmp_path / f"{i}.png", 128)
    (tmp_path / "broken.png").write_bytes(b"not an image at all")
    dm = build_datamodule(data_cfg(name="image_folder", root=str(tmp_path), image_size=8), seed=0)
    with pytest.raises(DataError, match="broken.png"):
        dm.setup()


def test_image_folder_missing_root(tmp_path):
    dm = build_datamodule(data_cfg(name="image_folder", root=str(tmp_path / "nope"),
                                   image_size=8), seed=0)
    with pytest.raises(DataError, match="does not exist"):
        dm.info()


def test_registered_datasets():
    assert {"ring2d", "grid2d", "digits", "mnist", "fashion_mnist", "cifar10",
            "image_folder"} <= set(DATASETS.names())


def test_mnist_corrupt_archive_is_a_clear_error(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08garbage")
    dm = build_datamodule(data_cfg(name="mnist", root=str(tmp_path), download=False), seed=0)
    with pytest.raises(DataError, match="corrupt archive"):
        dm.setup()
    assert (raw / "train-images-idx3-ubyte.gz").exists()  # nothing of the user's deleted
