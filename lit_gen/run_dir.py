"""The run directory contract: config.yaml, metrics.json, metrics.csv, samples/, checkpoints/.

Other tools (bench, sweep, evaluate) read these files; only rank 0 writes them.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

RUN_DIR_ENV = "LIT_GEN_RUN_DIR"  # set by rank 0 so processes launched after it agree
CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
SAMPLES_DIR = "samples"
CHECKPOINTS_DIR = "checkpoints"
DONE_FILE = "done.json"  # written by rank 0 when training finished normally (not on a crash)
ENVIRONMENT_FILE = "environment.json"  # library versions, device, git commit (provenance.py)


def atomic_write_text(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no nan/inf; keep them visible as strings
    return value


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(Path(path), json.dumps(_jsonable(data), indent=2, sort_keys=True) + "\n")


def is_finished(run_dir: str | Path) -> bool:
    """True when the run finished training normally (done marker and metrics.json present)."""
    return (Path(run_dir) / DONE_FILE).is_file() and (Path(run_dir) / METRICS_FILE).is_file()


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def update_metrics(run_dir: str | Path, values: dict[str, Any]) -> dict[str, Any]:
    """Merge `values` into metrics.json (one JSON object, name -> number or object)."""
    merged = {**read_metrics(run_dir), **_jsonable(values)}
    atomic_write_text(Path(run_dir) / METRICS_FILE,
                      json.dumps(merged, indent=2, sort_keys=True) + "\n")
    return merged
