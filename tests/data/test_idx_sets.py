"""idx-file sets: Fashion-MNIST from Debian's files (else torchvision), mnist10k's split."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from lit_gen import validation
from lit_gen.data import DATASETS, build_datamodule
from lit_gen.data.torchvision_sets import DEBIAN_FASHION_MNIST, read_idx
from lit_gen.errors import DataError


def write_idx(path: Path, array: np.ndarray) -> None:
    """An idx file of unsigned bytes (magic 0x0801 labels / 0x0803 images), gzipped."""
    header = (0x0800 + array.ndim).to_bytes(4, "big") + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def idx_folder(folder: Path, n_train: int, n_test: int, prefix=("train", "t10k")) -> dict:
    rng = np.random.RandomState(1)
    arrays = {}
    for split, n in zip(prefix, (n_train, n_test), strict=True):
        if n == 0:
            continue
        images = rng.randint(0, 256, size=(n, 28, 28))
        labels = np.arange(n) % 10
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", labels)
        arrays[split] = (images, labels)
    return arrays


def data_cfg(**kw):
    return validation.load([], [f"data.{k}={v}" for k, v in kw.items()]).data


def test_read_idx_round_trip_and_corrupt_header(tmp_path):
    a = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", a)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), a)
    with gzip.open(tmp_path / "bad.gz", "wb") as f:
        f.write(b"\x00\x00\x08\x03" + (5).to_bytes(4, "big") * 3 + b"short")
    with pytest.raises(DataError, match="bad.gz.*not an idx file"):
        read_idx(tmp_path / "bad.gz")


def test_fashion_mnist_reads_the_debian_files(tmp_path, monkeypatch):
    cls = DATASETS.get("fashion_mnist")
    arrays = idx_folder(tmp_path, 30, 20)
    monkeypatch.setattr(cls, "system_dir", tmp_path)
    dm = build_datamodule(data_cfg(name="fashion_mnist", root=str(tmp_path / "nothing"),
                                   download=False, val_fraction=0.0), seed=0)
    assert dm.source == str(tmp_path)
    dm.setup()
    x, y = dm.split("train")
    xt, yt = dm.split("test")
    images, labels = arrays["train"]
    assert x.shape == (30, 1, 28, 28) and xt.shape == (20, 1, 28, 28)
    assert torch.allclose(x[:, 0], torch.from_numpy(images / 127.5 - 1.0).float(), atol=1e-6)
    assert y.tolist() == labels.tolist() and yt.tolist() == arrays["t10k"][1].tolist()


def test_fashion_mnist_without_debian_files_or_download_is_a_clear_error(tmp_path, monkeypatch):
    cls = DATASETS.get("fashion_mnist")
    (tmp_path / "partial").mkdir()
    idx_folder(tmp_path / "partial", 10, 0)  # the test files missing: not used
    monkeypatch.setattr(cls, "system_dir", tmp_path / "partial")
    dm = build_datamodule(data_cfg(name="fashion_mnist", root=str(tmp_path / "root"),
                                   download=False), seed=0)
    assert dm.source == "torchvision"
    with pytest.raises(DataError) as info:
        dm.setup()
    msg = str(info.value)
    assert "FashionMNIST" in msg and "data.download" in msg
    assert "apt-get install dataset-fashion-mnist" in msg and str(tmp_path / "partial") in msg


@pytest.mark.skipif(not (DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").is_file(),
                    reason="dataset-fashion-mnist not installed (apt-get install "
                           "dataset-fashion-mnist)")
def test_installed_fashion_mnist_is_the_full_set():
    dm = build_datamodule(data_cfg(name="fashion_mnist", val_fraction=0.0), seed=0)
    dm.setup()
    x, y = dm.split("train")
    xt, yt = dm.split("test")
    assert x.shape == (60000, 1, 28, 28) and xt.shape == (10000, 1, 28, 28)
    assert torch.bincount(y).tolist() == [6000] * 10
    assert torch.bincount(yt).tolist() == [1000] * 10


@pytest.mark.parametrize("layout", ["flat", "torchvision"])
def test_mnist10k_fixed_split(tmp_path, layout):
    folder = tmp_path if layout == "flat" else tmp_path / "MNIST" / "raw"
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = idx_folder(folder, 0, 50)["t10k"]
    splits = {}
    for seed in (0, 3):  # the test split does not depend on the run seed
        dm = build_datamodule(data_cfg(name="mnist10k", root=str(tmp_path), val_fraction=0.2),
                              seed=seed)
        dm.setup()
        splits[seed] = dm.split("test")
        assert len(dm.x_train) == 32 and len(dm.x_val) == 8 and len(splits[seed][0]) == 10
    assert torch.equal(splits[0][0], splits[3][0])
    test_idx = np.sort(np.random.RandomState(0).permutation(50)[:10])
    assert splits[0][1].tolist() == labels[test_idx].tolist()
    assert dm.info().shape == (1, 28, 28) and dm.info().num_classes == 10


def test_mnist10k_missing_files_name_the_fix(tmp_path):
    dm = build_datamodule(data_cfg(name="mnist10k", root=str(tmp_path)), seed=0)
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz.*\n.*data.root"):
        dm.setup()
