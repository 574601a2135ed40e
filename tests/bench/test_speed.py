"""The speed benchmark runs end to end at tiny sizes and writes consistent JSON.

No timing is asserted (the figures depend on the machine); the checks are on structure,
internal consistency (ratios are quotients of the reported throughputs) and on results that
do not depend on speed (a cached second FID equals the first).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from lit_gen.bench import speed as bench_speed
from lit_gen.errors import ConfigError
from tests.conftest import ROOT

TINY = ["--models", "dcgan,vae", "--sizes", "28", "--data", "synthetic",
        "--batches", "dataloader,on_device", "--batch-size", "8", "--warmup", "1", "--steps", "2",
        "--repeats", "1", "--fid-n", "2", "--fid-real", "4", "--fid-batch-size", "8",
        "--extractors", "inception,classifier", "--device", "cpu",
        "--net-overrides", "model.generator.base_channels=8,model.discriminator.base_channels=8"]


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "speed.json"
    assert bench_speed.main([*TINY, "--out", str(out)]) == 0
    return json.loads(out.read_text())


def positive(x) -> bool:
    return isinstance(x, int | float) and math.isfinite(x) and x > 0


def test_training_rows(result):
    rows = {r["case"]: r for r in result["train"]}
    assert set(rows) == {"dcgan-28px-synthetic-dataloader", "dcgan-28px-synthetic-on_device",
                         "vae-28px-synthetic-dataloader", "vae-28px-synthetic-on_device"}
    for name, r in rows.items():
        assert r["steps"] == 2 and r["batch_size"] == 8 and r["channels"] == 1
        assert positive(r["plain"]["images_per_s"]) and positive(r["plain"]["peak_rss_mb"])
        assert r["plain"]["images_per_s"] == r["plain"]["wall_images_per_s"]  # default clock
        if "ratio" in r:
            lit, plain = r["lit_gen"]["images_per_s"], r["plain"]["images_per_s"]
            assert r["ratio"] == pytest.approx(lit / plain, rel=1e-3)
            assert r["overhead_ms_per_batch"] == pytest.approx(8e3 / lit - 8e3 / plain, abs=2e-3)
            assert r["status"] == ("PASS" if r["ratio"] >= 0.95 else "FAIL")
            # the bare-LightningModule reference splits the ratio: lit_gen/L x L/plain
            bare = r["lightning"]["images_per_s"]
            assert positive(bare) and r["lightning"]["runs"] == [bare]
            assert r["ratio_vs_lightning"] == pytest.approx(lit / bare, rel=1e-3)
            assert r["lightning_ratio"] == pytest.approx(bare / plain, rel=1e-3)
            assert r["ratio"] == pytest.approx(r["ratio_vs_lightning"] * r["lightning_ratio"], rel=2e-3)
        else:
            assert name.startswith("vae") and r["status"] == "SKIP" and "vae" in r["reason"]
    assert "ratio" in rows["dcgan-28px-synthetic-dataloader"]
    # lit_gen's VAE is measured where this checkout has one (lit_gen/models/vae.py)
    assert ("ratio" in rows["vae-28px-synthetic-dataloader"]) == bench_speed.vae_available()
    expected = ["dcgan-28px-synthetic"] + (["vae-28px-synthetic"] if bench_speed.vae_available() else [])
    assert [p["case"] for p in result["data_paths"]] == expected
    for dp in result["data_paths"]:
        assert dp["speedup"] == pytest.approx(
            dp["on_device_images_per_s"] / dp["dataloader_images_per_s"], rel=1e-3)
        assert dp["status"] == "INFO"  # no target on CPU


def test_fid_rows(result):
    fid = {r["extractor"]: r for r in result["fid"]}
    inc = fid["inception"]
    assert inc["n_generated"] == 2 and inc["n_real"] == 4
    direct = inc["torch_fidelity"]
    assert positive(direct["first_s"]) and positive(direct["second_s"])
    assert direct["speedup"] == pytest.approx(direct["first_s"] / direct["second_s"], rel=1e-2)
    assert direct["fid_second_equal"] is True  # cached real statistics give the same FID
    assert math.isfinite(direct["fid"]) and direct["fid"] >= 0
    assert inc["status"] in ("PASS", "FAIL")
    for r in fid.values():
        assert r["status"] in ("PASS", "FAIL", "SKIP")
        if "lit_gen" in r and "first_s" in r["lit_gen"]:
            assert r["fid_equal"] is True  # lit_gen's FID is torch-fidelity's


def test_targets_and_environment(result):
    checks = [t["check"] for t in result["targets"]]
    assert len(checks) == len(result["train"]) + len(result["fid"]) + len(result["data_paths"])
    assert all(t["status"] in ("PASS", "FAIL", "SKIP", "INFO") for t in result["targets"])
    env = result["environment"]
    assert env["device"] == "cpu" and env["torch"] and env["cpu_threads"] >= 1
    assert result["settings"]["steps"] == 2 and result["wall_s"] > 0
    text = bench_speed.format_report(result)
    assert "training (real images/s)" in text and "targets:" in text


def test_bad_arguments_exit_2(capsys):
    assert bench_speed.main(["--models", "dcgan,nope", "--skip-fid"]) == 2
    assert "--models: unknown 'nope'" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--steps must be >= 1"):
        bench_speed.parse_args(["--steps", "0"])
    assert bench_speed.parse_args([])[0].lightning_floor is True
    assert bench_speed.parse_args(["--no-lightning-floor"])[0].lightning_floor is False


def test_wrapper_script_help(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "speed.py"), "--help"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "--quick" in proc.stdout and "lit_gen" in proc.stdout
