"""What a resumed run may change, checked before anything in the run dir is touched.

The config stored in the checkpoint (what the weights were trained with) is compared with
the new one. Keys in `RESUMABLE` may change freely (how long, how often to log, sample and
measure, on which devices, where wandb writes); everything else defines the run (model,
nets, data, batch size, optimizer settings, seed) and a change is refused with the diff,
unless `resume_overrides=allow`: then it is applied for real (the new optimizer settings are
written into the restored optimizers, see `ApplyOptimizerSettings`) and recorded in
`resumes.json`.
"""

from __future__ import annotations

import csv
import fnmatch
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch

from lit_gen.config import to_container
from lit_gen.errors import ConfigError
from lit_gen.io import atomic_path, write_json
from lit_gen.run.dir import RESUMES_FILE
from lit_gen.run.signals import RESUME_KEY

#: keys a resume may change (fnmatch patterns over dotted keys), and why
RESUMABLE: dict[str, str] = {
    "resume": "where to resume from",
    "resume_overrides": "this policy itself",
    "experiment": "a name",
    "run.dir": "where the run is (checked by the resolution of the run dir)",
    "run.root": "where runs go",
    "run.sample_every_n_epochs": "sample grid schedule",
    "run.monitor": "which best checkpoints to keep from now on",
    "run.monitor_mode": "which best checkpoints to keep from now on",
    "run.save_top_k": "how many best checkpoints to keep",
    "run.write_every_s": "how often last.ckpt and grids are written",
    "run.threads": "speed (CPU threads)",
    "trainer.max_epochs": "train longer (upward only)",
    "trainer.max_steps": "train longer",
    "trainer.max_time": "train longer",
    "trainer.min_epochs": "train longer",
    "trainer.accelerator": "devices",
    "trainer.devices": "devices",
    "trainer.num_nodes": "devices",
    "trainer.strategy": "devices",
    "trainer.log_every_n_steps": "logging",
    "trainer.enable_progress_bar": "logging",
    "trainer.enable_model_summary": "logging",
    "trainer.profiler": "logging",
    "trainer.limit_val_batches": "validation schedule",
    "trainer.check_val_every_n_epoch": "validation schedule",
    "trainer.val_check_interval": "validation schedule",
    "trainer.num_sanity_val_steps": "validation schedule",
    "trainer.deterministic": "speed (same numbers on CPU)",
    "trainer.benchmark": "speed",
    "data.num_workers": "loader processes",
    "data.root": "where the data lives",
    "data.download": "where the data lives",
    "model.compile": "speed (weights unchanged)",
    "logger.*": "logging",
    "metrics.*": "metrics schedule and settings",
}

#: resumable keys that may only grow
UPWARD_ONLY = ("trainer.max_epochs",)

ALLOW = "allow"
POLICIES = ("refuse", ALLOW)


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """{dotted key: leaf value}; lists are leaves (a changed list is one change)."""
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict) and v:
                out.update(flatten(v, key))
            else:
                out[key] = v
        return out
    return {prefix: d}


def resumable(key: str) -> bool:
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in RESUMABLE)


def config_changes(stored: dict, new: dict) -> dict[str, tuple[Any, Any]]:
    """{key: (stored value, new value)} for every key that differs."""
    a, b = flatten(stored), flatten(new)
    missing = object()
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
            if a.get(k, missing) != b.get(k, missing)}


def _show(changes: dict[str, tuple[Any, Any]]) -> str:
    return "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changes.items())


def check_resume(stored: dict, cfg) -> dict[str, tuple[Any, Any]]:
    """The changes of `cfg` over the stored config, or a ConfigError listing the ones that
    are refused (the policy is `cfg.resume_overrides`)."""
    if cfg.resume_overrides not in POLICIES:
        raise ConfigError(f"resume_overrides must be one of {', '.join(POLICIES)}, got "
                          f"'{cfg.resume_overrides}'")
    changes = config_changes(stored, to_container(cfg))
    for key in UPWARD_ONLY:
        if key in changes:
            old, new = changes[key]
            if old is not None and (new is None or new < old):
                raise ConfigError(f"resume: {key} may only grow ({old} -> {new}); the "
                                  "checkpoint already trained towards the old value")
    defining = {k: v for k, v in changes.items() if not resumable(k)}
    if defining and cfg.resume_overrides != ALLOW:
        raise ConfigError(
            f"resume: these keys define the run and differ from the checkpoint's config: "
            f"{_show(defining)}. Resume with the old values, start a new run, or pass "
            "resume_overrides=allow to apply the change (recorded in resumes.json)")
    return changes


def record_resume(run_dir: Path, ckpt_path: str, ckpt: dict,
                  changes: dict[str, tuple[Any, Any]]) -> None:
    """`ckpt`: the checkpoint's `epoch` and `global_step` (or the checkpoint itself)."""
    """Append this resume (its checkpoint, step and config changes) to resumes.json."""
    from lit_gen.run.dir import read_json_list

    entries = read_json_list(run_dir / RESUMES_FILE)
    entries.append({
        "time": time.strftime("%Y-%m-%d %H:%M:%S"), "checkpoint": str(ckpt_path),
        "epoch": ckpt.get("epoch"), "global_step": ckpt.get("global_step"),
        "changes": {k: {"old": old, "new": new} for k, (old, new) in changes.items()},
        "forced": sorted(k for k in changes if not resumable(k))})
    write_json(run_dir / RESUMES_FILE, {"resumes": entries})


def checkpoint_log_step(ckpt: dict) -> int | None:
    """The first logger step a run resumed from `ckpt` logs (Lightning's batches-that-stepped;
    one more for a checkpoint saved at the end of a step, in the middle of an epoch, which
    Lightning counts again when it restarts there)."""
    try:
        step = int(ckpt["loops"]["fit_loop"]["epoch_loop.state_dict"]["_batches_that_stepped"])
    except (KeyError, TypeError, ValueError):
        return None
    return step + 1 if ckpt.get(RESUME_KEY) else step


def truncate_csv(path: Path, step: int) -> int:
    """Drop the rows of metrics.csv logged after `step` (replayed by the resumed run, e.g.
    after a kill between checkpoints); returns how many were dropped."""
    if not path.is_file():
        return 0
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows or "step" not in rows[0]:
        return 0
    col = rows[0].index("step")

    def keep(row: list[str]) -> bool:
        try:
            return int(float(row[col])) < step
        except (IndexError, ValueError):
            return True

    kept = [rows[0]] + [r for r in rows[1:] if keep(r)]
    dropped = len(rows) - len(kept)
    if dropped:
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            csv.writer(f).writerows(kept)
    return dropped


class ApplyOptimizerSettings(L.Callback):
    """After a resume, write the config's optimizer settings (lr, betas, weight decay,
    momentum) into the restored optimizers, whose loaded state carries the old ones.

    Run only when `resume_overrides=allow` changed an optimizer key: freshly built
    optimizers (the model's `configure_optimizers` with the new config) give the values;
    a scheduler's base learning rate is rescaled with them."""

    KEYS = ("lr", "betas", "weight_decay", "momentum", "alpha", "eps")

    def on_train_start(self, trainer, pl_module) -> None:
        fresh = pl_module.configure_optimizers()
        fresh = fresh[0] if isinstance(fresh, tuple) else fresh
        if isinstance(fresh, dict):
            fresh = [fresh["optimizer"]]
        fresh = [f["optimizer"] if isinstance(f, dict) else f
                 for f in (fresh if isinstance(fresh, list | tuple) else [fresh])]
        fresh = [f for f in fresh if isinstance(f, torch.optim.Optimizer)]
        for opt, new in zip(trainer.optimizers, fresh, strict=True):
            for group, new_group in zip(opt.param_groups, new.param_groups, strict=True):
                for key in self.KEYS:
                    if key in new_group and key != "lr":
                        group[key] = new_group[key]
                # the base learning rate (a scheduler's initial_lr) changes; the current one
                # keeps its place on the schedule
                old_base = group.get("initial_lr", group["lr"])
                new_base = new_group.get("initial_lr", new_group["lr"])
                group["lr"] = group["lr"] * new_base / old_base if old_base else new_base
                if "initial_lr" in group:
                    group["initial_lr"] = new_base
        for config in trainer.lr_scheduler_configs:
            sched = config.scheduler
            sched.base_lrs = [g.get("initial_lr", g["lr"]) for g in sched.optimizer.param_groups]
