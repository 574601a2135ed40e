"""Shared fixtures: tiny in-process runs, the real MNIST test set from ../shared when present."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"
EXPERIMENTS = sorted((ROOT / "conf" / "experiment").glob("*.yaml"))

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
# The suite's nets are tiny: one intra-op thread per process is faster than several (no
# thread start-up per op), and DDP tests run 2 processes on a 2-core machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


TINY_BATCHES = 6  # training batches per epoch in tiny runs (>= n_critic of every model)


def tiny_overrides(run_dir: Path, epochs: int = 1) -> list[str]:
    """Overrides that make any experiment a few-second CPU run."""
    return [f"run.dir={run_dir}", f"trainer.max_epochs={epochs}", "trainer.accelerator=cpu",
            "trainer.devices=1", f"trainer.limit_train_batches={TINY_BATCHES}", "trainer.limit_val_batches=1",
            "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
            "data.limit=96", "data.batch_size=16", "data.n_samples=600", "data.num_workers=0",
            "metrics.num_samples=64"]


def fit(config_files, overrides):
    """Run `lit_gen.fit` in this process (fast: no interpreter start-up); returns the run dir."""
    from lit_gen import fit as fit_mod
    from lit_gen import validation

    cfg = validation.load([str(c) for c in config_files], list(overrides))
    return fit_mod.run(cfg)


def assert_same_training(a_dir: Path, b_dir: Path) -> None:
    """Two runs' last checkpoints hold the same training: step counts, parameters and
    optimizer states, bit for bit."""
    from lit_gen.run.checkpoint import read_checkpoint

    a = read_checkpoint(a_dir / "checkpoints" / "last.ckpt")
    b = read_checkpoint(b_dir / "checkpoints" / "last.ckpt")
    assert a["global_step"] == b["global_step"] > 0
    assert a["lit_gen"]["g_steps"] == b["lit_gen"]["g_steps"] > 0
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    for sa, sb in zip(a["optimizer_states"], b["optimizer_states"], strict=True):
        for pa, pb in zip(sa["state"].values(), sb["state"].values(), strict=True):
            assert all(torch.equal(pa[key], pb[key]) for key in pa)


def run_cli(module: str, *args: str, cwd: Path = ROOT, timeout: int = 600,
            env: dict | None = None) -> subprocess.CompletedProcess:
    """Run `python -m <module> args...` in a subprocess (for exit codes and DDP)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=full_env)


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory) -> Path:
    """A data.root holding MNIST/raw/ laid out as torchvision expects, made from the real
    MNIST test set in ../shared (the 10,000 test images stand in for the training set)."""
    if not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST test set not found at {SHARED_MNIST} (only in the team's checkout)")
    root = tmp_path_factory.mktemp("mnist_root")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for kind in ("images-idx3", "labels-idx1"):
        src = SHARED_MNIST / f"t10k-{kind}-ubyte.gz"
        shutil.copy(src, raw / src.name)
        shutil.copy(src, raw / f"train-{kind}-ubyte.gz")
    return root


@pytest.fixture(scope="session")
def digits_classifier(tmp_path_factory) -> Path:
    """A domain classifier trained on digits at 8 px by `lit_gen.train_classifier` (seconds)."""
    from lit_gen.train_classifier import main

    out = tmp_path_factory.mktemp("classifier") / "digits8.pt"
    assert main(["--data", "digits", "--out", str(out), "--epochs", "8", "--seed", "0"]) == 0
    return out


@pytest.fixture(scope="session")
def classifier_factory(tmp_path_factory):
    """Domain classifiers trained briefly by `lit_gen.train_classifier`, one per (data, size)."""
    from lit_gen.train_classifier import main

    made: dict = {}

    def get(data: str, image_size: int | None) -> Path:
        key = (data, image_size)
        if key not in made:
            out = tmp_path_factory.mktemp("classifier") / f"{data}-{image_size}.pt"
            extra = [f"data.image_size={image_size}"] if image_size else []
            assert main(["--data", data, *extra, "--out", str(out), "--epochs", "2"]) == 0
            made[key] = out
        return made[key]

    return get
