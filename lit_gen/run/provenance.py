"""Where a run's numbers came from: library versions, device, git commit.

`fit` writes `environment.json` into the run dir (rank 0, at start); `bench` prints it next
to the table, so a published number names the code and hardware that produced it.
"""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from lit_gen import __version__

# the distributions whose versions decide the numbers (import name differs for some)
LIBRARIES = ("torch", "torchvision", "lightning", "torch-fidelity", "numpy", "scipy",
             "scikit-learn", "omegaconf", "wandb")

PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def library_versions() -> dict[str, str]:
    """{"python": "3.11.9", "torch": "2.15.0", ...}; "not installed" when absent."""
    out = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit(path: Path = PACKAGE_ROOT) -> str:
    """The commit of the lit_gen checkout at `path`, with `-dirty` when tracked files differ
    from it; "unknown (...)" outside a git checkout (an installed wheel, a Docker image)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return "unknown (not a git checkout)"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=path, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown (git not available)"
    commit = head.stdout.strip()
    return commit + ("-dirty" if dirty.stdout.strip() else "")


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def device_description(trainer=None) -> str:
    """What trained the run, e.g. "NVIDIA H100 80GB HBM3 x 8 (2 nodes)" or "cpu: AMD EPYC x 1".

    Args:
        trainer: the Lightning Trainer (its accelerator, world size and node count); None
            describes this process's default device.
    """
    import torch

    world = getattr(trainer, "world_size", 1) if trainer is not None else 1
    nodes = getattr(trainer, "num_nodes", 1) if trainer is not None else 1
    root = getattr(getattr(trainer, "strategy", None), "root_device", None)
    if root is None:
        root = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if root.type == "cuda":
        name = torch.cuda.get_device_name(root)
    elif root.type == "mps":
        name = "Apple MPS"
    else:
        name = f"cpu: {cpu_name()}"
    return f"{name} x {world}" + (f" ({nodes} nodes)" if nodes > 1 else "")


def environment_info(trainer=None) -> dict[str, Any]:
    """The record `fit` stores as environment.json."""

    return {
        "lit_gen": __version__,
        "git_commit": git_commit(),
        "device": device_description(trainer),
        "libraries": library_versions(),
    }
