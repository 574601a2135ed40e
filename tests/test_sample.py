"""`lit_gen.sample`: npz/png from a checkpoint alone, repeatable by seed, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import ROOT, fit, run_cli, tiny_overrides


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("sample") / "run"
    fit([ROOT / "conf" / "experiment" / "dcgan_digits.yaml"], tiny_overrides(run_dir))
    return run_dir / "checkpoints" / "last.ckpt"


def test_sample_npz_and_png_repeatable(ckpt, tmp_path):
    from lit_gen.sample import main

    a, b, c = tmp_path / "a.npz", tmp_path / "b.npz", tmp_path / "c.npz"
    png = tmp_path / "grid.png"
    assert main(["--ckpt", str(ckpt), "--n", "37", "--out", str(a), "--out", str(png),
                 "--seed", "3", "--batch-size", "10"]) == 0
    assert main(["--ckpt", str(ckpt), "--n", "37", "--out", str(b), "--seed", "3",
                 "--batch-size", "10"]) == 0
    assert main(["--ckpt", str(ckpt), "--n", "37", "--out", str(c), "--seed", "4"]) == 0
    xa, xb, xc = (np.load(p)["x"] for p in (a, b, c))
    assert xa.shape == (37, 1, 16, 16) and xa.dtype == np.float32
    assert "y" not in np.load(a)
    assert np.array_equal(xa, xb)
    assert not np.array_equal(xa, xc)
    assert xa.min() >= -1.0 and xa.max() <= 1.0
    from PIL import Image

    assert Image.open(png).size[0] > 16 * 8


def test_sample_cli_errors(ckpt, tmp_path):
    proc = run_cli("lit_gen.sample", "--ckpt", str(ckpt), "--out", str(tmp_path / "x.txt"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and ".npz or .png" in proc.stderr
    proc = run_cli("lit_gen.sample", "--ckpt", str(ckpt), "--labels", "1,2",
                   "--out", str(tmp_path / "x.npz"))
    assert proc.returncode == 2 and "conditional" in proc.stderr
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"PK\x03\x04 truncated zip")
    proc = run_cli("lit_gen.sample", "--ckpt", str(bad), "--out", str(tmp_path / "x.npz"))
    assert proc.returncode == 2 and "cannot read checkpoint" in proc.stderr
    assert not (tmp_path / "x.npz").exists()
