"""The run directory contract: config.yaml, metrics.json, metrics.csv, samples/, checkpoints/.

Other tools (bench, sweep, evaluate) read these files; only rank 0 writes them.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from lit_gen.errors import CheckpointError, ConfigError
from lit_gen.io import atomic_write_text, jsonable

RUN_DIR_ENV = "LIT_GEN_RUN_DIR"  # set by rank 0 so processes launched after it agree
CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
SAMPLES_DIR = "samples"
CHECKPOINTS_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"
DONE_FILE = "done.json"  # written by rank 0 when training finished normally (not on a crash)
ENVIRONMENT_FILE = "environment.json"  # library versions, device, git commit (provenance.py)
RESUMES_FILE = "resumes.json"  # each resume: checkpoint, step, config changes (run/resume.py)
CSV_FILE = "metrics.csv"  # every logged value by step (Lightning's CSVLogger, appended on resume)


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
    merged = {**read_metrics(run_dir), **jsonable(values)}
    atomic_write_text(Path(run_dir) / METRICS_FILE,
                      json.dumps(merged, indent=2, sort_keys=True) + "\n")
    return merged


def read_json_list(path: Path) -> list:
    """The `resumes` list of a json file written by `record_resume` ([] without one)."""
    if not path.is_file():
        return []
    try:
        return list(json.loads(path.read_text()).get("resumes", []))
    except (json.JSONDecodeError, AttributeError):
        return []


def check_writable(run_dir: Path) -> None:
    """A ConfigError now, before any work, if the run dir cannot be created or written (a
    read-only filesystem or folder, a name longer than the filesystem allows). Creates
    nothing that stays: a probe file in the run dir, or in its nearest existing parent."""
    run_dir = Path(run_dir)
    try:
        existing = run_dir
        while not existing.exists():
            existing = existing.parent
        missing = run_dir.relative_to(existing).parts if existing != run_dir else ()
        name_max = os.pathconf(existing, "PC_NAME_MAX")
        for part in missing:
            if len(part.encode()) > name_max:
                raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG))
        if len(str(run_dir.resolve() / CHECKPOINTS_DIR / f".{LAST_CHECKPOINT}.x.tmp.ckpt")) \
                >= os.pathconf(existing, "PC_PATH_MAX"):
            raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG))
        if not existing.is_dir():
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".lit_gen-write-test."):
            pass
    except OSError as err:
        raise ConfigError(f"run.dir {run_dir} cannot be written ({err.strerror or err}); "
                          "choose a writable run.dir (or run.root) with a shorter name") from None


def rank() -> int:
    """This process's global rank (0 before DDP starts)."""
    from lightning.pytorch.utilities import rank_zero_only

    return getattr(rank_zero_only, "rank", 0)


def resolve_run_dir(cfg) -> tuple[Path, str | None]:
    """(run dir, checkpoint to resume from) for this run; checks nothing is overwritten.

    The checkpoint itself is read (and checked) by the caller."""
    inherited = os.environ.get(RUN_DIR_ENV)
    if cfg.resume is not None and cfg.resume != "last":
        ckpt = Path(cfg.resume)
        if cfg.run.dir:
            run_dir = Path(cfg.run.dir)
        elif ckpt.parent.name == CHECKPOINTS_DIR:
            run_dir = ckpt.parent.parent
        else:
            raise ConfigError(f"resume={ckpt} is not inside a run's checkpoints/ folder; "
                              "also set run.dir")
        return run_dir, str(ckpt)
    if cfg.resume == "last":
        if cfg.run.dir:
            run_dir = Path(cfg.run.dir)
        else:
            root = Path(cfg.run.root)
            found = sorted(root.glob(f"{cfg.experiment}-*/{CHECKPOINTS_DIR}/{LAST_CHECKPOINT}"),
                           key=lambda p: p.stat().st_mtime) if root.is_dir() else []
            if not found:
                raise CheckpointError(f"resume=last: no run of '{cfg.experiment}' with "
                                      f"checkpoints/{LAST_CHECKPOINT} under {root}/; set run.dir")
            run_dir = found[-1].parent.parent
        ckpt = run_dir / CHECKPOINTS_DIR / LAST_CHECKPOINT
        if not ckpt.is_file():
            raise CheckpointError(f"resume=last: {ckpt} does not exist; start the run "
                                  "without resume, or pass resume=PATH")
        return run_dir, str(ckpt)
    if inherited:
        return Path(inherited), None
    if cfg.run.dir:
        run_dir = Path(cfg.run.dir)
    else:
        # a wandb agent runs many runs in one SLURM job: its run id comes first
        stamp = (os.environ.get("WANDB_RUN_ID") or os.environ.get("SLURM_JOB_ID")
                 or os.environ.get("TORCHELASTIC_RUN_ID") or time.strftime("%Y%m%d-%H%M%S"))
        run_dir = Path(cfg.run.root) / f"{cfg.experiment}-{stamp}"
    if rank() == 0:
        check_writable(run_dir)  # also before the checks below (a too-long name raises there)
    last = run_dir / CHECKPOINTS_DIR / LAST_CHECKPOINT
    if os.environ.get("SLURM_RESTART_COUNT", "0") not in ("", "0") and last.is_file():
        # a job SLURM requeued (after a pre-emption, see run/signals.py) runs the same
        # command again: it continues its own run dir
        return run_dir, str(last)
    if ((run_dir / CONFIG_FILE).exists() or last.exists()) and rank() == 0:
        raise ConfigError(f"run dir {run_dir} already holds a run; pass resume=last to "
                          "continue it, or choose another run.dir")
    return run_dir, None
