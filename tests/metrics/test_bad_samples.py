"""`lit_gen.evaluate --samples` refuses files it cannot score faithfully, one line each."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lit_gen.errors import DataError
from lit_gen.evaluate import load_samples
from tests.conftest import ROOT, fit, tiny_overrides

SHAPE = (1, 4, 4)


def good(n: int = 5) -> np.ndarray:
    return np.random.default_rng(0).uniform(-1, 1, size=(n, *SHAPE)).astype(np.float32)


def write(path, arr, npz=True):
    if npz:
        np.savez(path, x=arr)
    else:
        np.save(path, arr)
    return path


BAD = {
    "nan": (lambda p: write(p / "a.npz", np.where(good() > 0.9, np.nan, good())), "non-finite"),
    "inf": (lambda p: write(p / "a.npz", np.full((3, *SHAPE), np.inf, np.float32)), "non-finite"),
    "uint8": (lambda p: write(p / "a.npz", (np.arange(80) % 256).astype(np.uint8).reshape(5, *SHAPE)),
              "--convert-uint8"),
    "range": (lambda p: write(p / "a.npz", good() * 3), r"outside the protocol's \[-1, 1\]"),
    "dtype": (lambda p: write(p / "a.npz", np.ones((5, *SHAPE), np.int64)), "int64 values"),
    "empty": (lambda p: write(p / "a.npz", np.zeros((0, *SHAPE), np.float32)), "holds no samples"),
    "shape": (lambda p: write(p / "a.npz", np.zeros((4, 3, 4, 4), np.float32)), "shape"),
    "no_x": (lambda p: (np.savez(p / "a.npz", y=good()), p / "a.npz")[1], "no array 'x'"),
    "truncated": (lambda p: _truncate(write(p / "a.npz", good(50))), "unreadable or truncated"),
    "truncated_npy": (lambda p: _truncate(write(p / "a.npy", good(50), npz=False)),
                      "unreadable or truncated"),
    "text": (lambda p: (p.joinpath("a.npz").write_text("hello"), p / "a.npz")[1], "unreadable"),
    "missing": (lambda p: p / "nope.npz", "file not found"),
    "pickle": (lambda p: write(p / "a.npy", np.array([{"a": 1}], dtype=object), npz=False),
               "unreadable"),
}


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_sample_file_is_refused_with_one_line(tmp_path, case):
    make, message = BAD[case]
    path = make(tmp_path)
    with pytest.raises(DataError, match=message) as err:
        load_samples(str(path), SHAPE)
    assert "\n" not in str(err.value)


def test_good_files_load_and_uint8_converts_when_asked(tmp_path):
    x = good()
    assert torch.equal(load_samples(str(write(tmp_path / "a.npz", x)), SHAPE), torch.from_numpy(x))
    renamed = write(tmp_path / "b.npy", x, npz=False).rename(tmp_path / "b.npz")  # an .npy named .npz
    assert torch.equal(load_samples(str(renamed), SHAPE), torch.from_numpy(x))
    u = (np.arange(80) % 256).astype(np.uint8).reshape(5, *SHAPE)
    out = load_samples(str(write(tmp_path / "u.npz", u)), SHAPE, convert_uint8=True)
    assert out.numpy() == pytest.approx(u / 127.5 - 1, abs=1e-6)
    assert out.min() >= -1 and out.max() <= 1
    # toy data has no range: large values are fine, NaN is not
    pts = np.array([[5.0, -7.0], [0.0, 1.0]], np.float32)
    assert load_samples(str(write(tmp_path / "t.npz", pts)), (2,), image=False).shape == (2, 2)


@pytest.mark.slow
def test_evaluate_cli_exits_2_on_bad_samples(tmp_path, capsys, digits_classifier):
    from lit_gen.evaluate import main as evaluate

    run = fit([ROOT / "conf" / "experiment" / "dcgan_digits.yaml"], tiny_overrides(tmp_path / "run"))
    ckpt = str(run / "checkpoints" / "last.ckpt")
    nan = write(tmp_path / "nan.npz", np.full((10, 1, 16, 16), np.nan, np.float32))
    u8 = write(tmp_path / "u8.npz", np.full((10, 1, 16, 16), 200, np.uint8))
    extra = ["--metrics", "fid", "metrics.feature_extractor=classifier",
             f"metrics.classifier_ckpt={digits_classifier}"]
    assert evaluate(["--ckpt", ckpt, "--samples", str(nan), *extra]) == 2
    assert "non-finite" in capsys.readouterr().err
    assert evaluate(["--ckpt", ckpt, "--samples", str(u8), *extra]) == 2
    assert "--convert-uint8" in capsys.readouterr().err
    assert evaluate(["--ckpt", ckpt, "--samples", str(u8), "--convert-uint8", *extra]) == 0
