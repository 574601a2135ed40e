"""The same config and seed give the same metrics.json on CPU; another seed does not."""

from __future__ import annotations

import fnmatch
import json

import pytest

from tests.conftest import ROOT, fit, tiny_overrides

# entries that measure the machine, not the model (none today; speed modes may add some)
TIMING_KEYS = ("*time*", "*seconds*", "*throughput*", "*per_sec*")
CASES = ["gan_ring2d", "dcgan_digits"]  # an MLP on toy data; conv nets with batch norm


def model_metrics(run_dir) -> dict:
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {k: v for k, v in metrics.items()
            if not any(fnmatch.fnmatchcase(k, p) for p in TIMING_KEYS)}


@pytest.mark.parametrize("name", CASES)
def test_same_seed_same_metrics(name, tmp_path):
    exp = ROOT / "conf" / "experiment" / f"{name}.yaml"
    runs = {}
    for label, seed in (("a", 3), ("b", 3), ("c", 4)):
        run_dir = tmp_path / label
        fit([exp], tiny_overrides(run_dir, epochs=2) + [f"seed={seed}"])
        runs[label] = model_metrics(run_dir)
    a, b, c = runs["a"], runs["b"], runs["c"]
    losses = [k for k in a if k.startswith("train/")]
    assert losses and a["epoch"] == 2
    assert a == b  # bit for bit: every loss, D output and counter
    assert {k: c[k] for k in losses} != {k: a[k] for k in losses}  # the seed matters
