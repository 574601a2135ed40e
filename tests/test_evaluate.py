"""Metrics during training (callback, best-by-FID checkpoint) and `python -m lit_gen.evaluate`."""

from __future__ import annotations

import csv
import json

import pytest

from lit_gen.run.dir import read_metrics
from tests.conftest import TINY_BATCHES, fit, tiny_overrides

QUICKSTART = "conf/experiment/quickstart.yaml"
RING = "conf/experiment/gan_ring2d.yaml"


@pytest.fixture(scope="module")
def image_run(tmp_path_factory, digits_classifier):
    """A 2-epoch quickstart run with classifier FID/IS/KID/PRC every epoch, best by FID."""
    tmp = tmp_path_factory.mktemp("image_run")
    run_dir = fit([QUICKSTART], tiny_overrides(tmp / "run", epochs=2) + [
        "metrics.names=[fid,isc,kid,prc]", "metrics.feature_extractor=classifier",
        f"metrics.classifier_ckpt={digits_classifier}", "metrics.every_n_epochs=1",
        f"metrics.cache_dir={tmp / 'cache'}", "run.monitor=fid"])
    return run_dir, tmp / "cache"


@pytest.mark.slow
def test_training_logs_metrics_protocol_and_best_fid_checkpoint(image_run, digits_classifier):
    import hashlib

    import torch_fidelity

    run_dir, cache = image_run
    m = read_metrics(run_dir)
    for key in ("fid", "isc_mean", "isc_std", "kid_mean", "kid_std", "precision", "recall", "f_score"):
        assert isinstance(m[key], float), key
    assert m["fid"] > 0 and 1.0 <= m["isc_mean"] <= 10.0 and 0.0 <= m["precision"] <= 1.0
    p = m["protocol"]
    assert p["feature_extractor"] == "classifier"
    assert p["feature_extractor_sha256"] == hashlib.sha256(digits_classifier.read_bytes()).hexdigest()
    assert p["n_generated"] == 64 and p["n_real"] == 96 and p["real_split"] == "train"
    assert p["image_size"] == 8 and p["sample_size"] == [16, 16]
    assert p["torch_fidelity_version"] == torch_fidelity.__version__
    assert p["epoch"] == 2 and p["g_step"] == m["g_step"] and p["ema"] is False
    with open(run_dir / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("fid")]
    assert len(rows) == 2  # logged at both epochs
    assert float(rows[-1]["fid"]) == pytest.approx(m["fid"], rel=1e-6)
    best = sorted((run_dir / "checkpoints").glob("best-fid-epoch*.ckpt"))
    assert len(best) == 1
    best_epoch = int(best[0].stem.rsplit("epoch", 1)[1])
    assert float(rows[best_epoch]["fid"]) == pytest.approx(min(float(r["fid"]) for r in rows))
    assert any(cache.iterdir())


def test_curve_names_evaluate_a_subset_during_training(tmp_path, digits_classifier):
    """metrics.curve_names: the every-epoch evaluations compute only fid, the last one all."""
    run_dir = fit([QUICKSTART], tiny_overrides(tmp_path / "run", epochs=3) + [
        "metrics.names=[fid,kid]", "metrics.curve_names=[fid]", "metrics.every_n_epochs=1",
        "metrics.feature_extractor=classifier", f"metrics.classifier_ckpt={digits_classifier}",
        "metrics.kid_subset_size=32"])
    with open(run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows if r.get("fid")] == ["0", "1", "2"]
    assert [r["epoch"] for r in rows if r.get("kid_mean")] == ["2"]  # the last epoch only
    m = read_metrics(run_dir)
    assert m["protocol"]["metrics"] == ["fid", "kid"] and m["protocol"]["epoch"] == 3
    last = [r for r in rows if r.get("fid")][-1]
    assert float(last["fid"]) == pytest.approx(m["fid"], rel=1e-6)
    assert float(last["kid_mean"]) == pytest.approx(m["kid_mean"], rel=1e-6)


def test_curve_names_run_stopped_by_max_steps_ends_with_all_names(tmp_path, digits_classifier):
    """Stopped by trainer.max_steps at the end of epoch 2 of 5, whose evaluation computed
    the curve's names only: on_train_end still computes all of names."""
    run_dir = fit([QUICKSTART], tiny_overrides(tmp_path / "run", epochs=5) + [
        "metrics.names=[fid,kid]", "metrics.curve_names=[fid]", "metrics.every_n_epochs=1",
        "metrics.feature_extractor=classifier", f"metrics.classifier_ckpt={digits_classifier}",
        "metrics.kid_subset_size=32", f"trainer.max_steps={2 * 2 * TINY_BATCHES}"])  # D + G steps
    with open(run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows if r.get("fid") and r.get("epoch")][:2] == ["0", "1"]
    assert not [r for r in rows if r.get("kid_mean") and r.get("epoch") in ("0", "1")]
    m = read_metrics(run_dir)
    assert m["protocol"]["metrics"] == ["fid", "kid"] and isinstance(m["kid_mean"], float)
    assert m["g_step"] == 2 * TINY_BATCHES  # the step of the second epoch's curve evaluation


@pytest.mark.slow
def test_evaluate_checkpoint_and_samples(image_run, tmp_path, capsys):
    from lit_gen.evaluate import main as evaluate
    from lit_gen.sample import main as sample

    run_dir, cache = image_run
    ckpt = str(run_dir / "checkpoints" / "last.ckpt")
    out1, out2 = tmp_path / "e1.json", tmp_path / "e2.json"
    assert evaluate(["--ckpt", ckpt, "--n", "80", "--out", str(out1)]) == 0
    first = json.loads(out1.read_text())
    assert {"fid", "isc_mean", "kid_mean", "precision"} <= first.keys()
    assert first["protocol"]["n_generated"] == 80 and first["protocol"]["checkpoint"] == ckpt
    assert first["protocol"]["real_cache_name"] == read_metrics(run_dir)["protocol"]["real_cache_name"]
    assert evaluate(["--ckpt", ckpt, "--n", "80", "--out", str(out2)]) == 0
    assert json.loads(out2.read_text()) == first  # same seed, same samples, cached real stats

    # stdout when no --out, metrics chosen on the command line
    assert evaluate(["--ckpt", ckpt, "--n", "40", "--metrics", "fid", "metrics.isc_splits=2"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"fid", "protocol"} and printed["protocol"]["n_generated"] == 40

    # samples written by lit_gen.sample, scored against the checkpoint's dataset
    npz = tmp_path / "s.npz"
    assert sample(["--ckpt", ckpt, "--n", "70", "--out", str(npz)]) == 0
    out3 = tmp_path / "e3.json"
    assert evaluate(["--ckpt", ckpt, "--samples", str(npz), "--metrics", "fid,isc",
                     "--out", str(out3)]) == 0
    scored = json.loads(out3.read_text())
    assert scored["protocol"]["n_generated"] == 70 and scored["protocol"]["samples"] == str(npz)
    assert scored["fid"] > 0 and scored["fid"] != first["fid"]


def test_evaluate_user_errors(image_run, tmp_path, capsys):
    import numpy as np

    from lit_gen.evaluate import main as evaluate

    run_dir, _ = image_run
    ckpt = str(run_dir / "checkpoints" / "last.ckpt")
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((5, 1, 8, 8), dtype=np.float32))
    cases = [
        (["--samples", str(bad)], "shape (1, 8, 8)"),
        (["--metrics", "toy"], "'toy' needs a 2D toy dataset"),
        (["--metrics", "fid", "trainer.max_epochs=3"], "only metrics.* and data.* overrides"),
        (["--n", "0"], "--n must be positive"),
        (["--samples", str(tmp_path / "none.npz")], "file not found"),
    ]
    for args, match in cases:
        assert evaluate(["--ckpt", ckpt, *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error: ") and match in err, (args, err)
    assert evaluate(["--ckpt", str(tmp_path / "missing.ckpt")]) == 2


@pytest.mark.slow
def test_toy_metrics_in_training_and_evaluate(tmp_path):
    from lit_gen.evaluate import main as evaluate

    run_dir = fit([RING], tiny_overrides(tmp_path / "run", epochs=1) + ["metrics.names=[toy]"])
    m = read_metrics(run_dir)
    assert 0 <= m["modes_captured"] <= 8 and 0.0 <= m["high_quality_pct"] <= 100.0
    assert m["protocol"]["toy"] == {"n_generated": 2500, "modes": 8, "mode_std": 0.01,
                                    "high_quality_within_std": 3.0}
    out = tmp_path / "toy.json"
    assert evaluate(["--ckpt", str(run_dir / "checkpoints" / "last.ckpt"), "--n", "500",
                     "--out", str(out)]) == 0
    got = json.loads(out.read_text())
    assert set(got) == {"modes_captured", "high_quality_pct", "mode_reverse_kl", "protocol"}
    assert got["protocol"]["toy"]["n_generated"] == 500
