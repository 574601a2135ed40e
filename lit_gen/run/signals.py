"""Pre-emption: SIGTERM or SIGUSR1 saves a resumable checkpoint at the current step.

A cluster scheduler sends SIGTERM before it kills a job (SLURM's `--signal=USR1@T` sends
SIGUSR1 some time earlier). `Preemption` notes the signal and, at the end of the training
step in progress (a consistent state: no half-applied optimizer step), writes last.ckpt,
asks SLURM to requeue the job when Lightning's `SLURMEnvironment` has `auto_requeue` on,
and stops the run with exit code 128 + the signal number (143 for SIGTERM, 138 for
SIGUSR1); done.json is not written.

The checkpoint holds what a mid-epoch restart needs to continue bit for bit: how many
batches of the epoch are done (the data module skips them: its order is a function of the
seed and epoch), the RNG states at that step (torch, CUDA, numpy, Python, and an ensemble's
per-member noise streams), and the model's running epoch sums. `resume=last` (or, after a
SLURM requeue, the same command) continues.

Single-process runs only: under DDP Lightning's own SIGTERM handling stays in place (the
ranks must agree on the step to stop at).
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import lightning as L
import numpy as np
import torch

RESUME_KEY = "lit_gen_resume"  # the checkpoint entry for a mid-epoch restart
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Preempted(SystemExit):
    """The run stopped at a signal after saving last.ckpt; `code` is 128 + the signal."""

    def __init__(self, signum: int, step: int, path: Path):
        super().__init__(128 + signum)
        self.signum, self.step, self.path = signum, step, path

    def __str__(self) -> str:
        return (f"stopped by {signal.Signals(self.signum).name} after training step "
                f"{self.step}: saved {self.path}; continue with resume=last")


def rng_states() -> dict:
    """Every global RNG's state as tensors and plain lists (weights-only loadable)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, py_gauss = random.getstate()
    states = {"torch": torch.get_rng_state(),
              "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                        "has_gauss": int(has_gauss), "gauss": float(gauss)},
              "python": {"version": version, "state": list(py_state), "gauss": py_gauss}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"],
                         n["has_gauss"], n["gauss"]))
    p = states["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def requeue_slurm_job(trainer) -> bool:
    """`scontrol requeue` this job when Lightning's SLURM environment has auto_requeue on
    (its default); the command Lightning's own handler runs. Returns whether it was asked."""
    from lightning.fabric.plugins.environments import SLURMEnvironment

    env = trainer._accelerator_connector.cluster_environment
    if not (isinstance(env, SLURMEnvironment) and env.auto_requeue):
        return False
    array_id = os.environ.get("SLURM_ARRAY_JOB_ID")
    job = (f"{array_id}_{os.environ['SLURM_ARRAY_TASK_ID']}" if array_id
           else os.environ.get("SLURM_JOB_ID", ""))
    if not re.fullmatch(r"[0-9_]+", job):
        return False
    try:
        return subprocess.call(["scontrol", "requeue", job]) == 0
    except OSError:
        return False


class Preemption(L.Callback):
    """Saves last.ckpt at the step a SIGTERM / SIGUSR1 arrives in, then stops (see the module
    docstring). Also restores the mid-epoch state such a checkpoint holds.

    Args:
        last_path: the run's last.ckpt.
    """

    def __init__(self, last_path: str | Path):
        self.last_path = Path(last_path)
        self.signum: int | None = None
        self._previous: dict[int, object] = {}
        self._resume: dict | None = None
        self._mid_epoch_state: dict | None = None

    # --- signals ------------------------------------------------------------------------
    def _note(self, signum, frame) -> None:
        self.signum = signum  # acted on at the end of the current training step

    def on_train_start(self, trainer, pl_module) -> None:
        if self._resume is not None:
            state, self._resume = self._resume, None
            set_rng_states(state["rng"])
            if state.get("member_rngs") is not None:  # an ensemble's own noise streams
                pl_module.set_member_rng_states(state["member_rngs"])
            elif getattr(pl_module, "n_members", 1) > 1:
                print("lit_gen.fit: this mid-epoch checkpoint predates saving an ensemble's "
                      "noise streams: the rest of its epoch draws other noise than an "
                      "uninterrupted run would (the run is sound, not bit-identical)",
                      file=sys.stderr)
            sums = getattr(pl_module, "_train_logs", None)
            if sums is not None and "epoch_sums" in state:
                s = state["epoch_sums"]
                sums.sums = {k: (v.to(pl_module.device) if torch.is_tensor(v) else v)
                             for k, v in s["sums"].items()}
                sums.counts = dict(s["counts"])
                sums.prog_bar = set(s["prog_bar"])
        if trainer.world_size > 1 or threading.current_thread() is not threading.main_thread():
            return
        for sig in SIGNALS:  # replaces Lightning's SIGTERM handler (restored in teardown)
            self._previous[sig] = signal.signal(sig, self._note)

    def _restore_handlers(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def on_train_end(self, trainer, pl_module) -> None:
        self._restore_handlers()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._restore_handlers()

    def teardown(self, trainer, pl_module, stage) -> None:
        self._restore_handlers()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self.signum is not None and batch_idx == 0:
            # the signal came at or after the end of the last epoch's last step: the
            # epoch-end last.ckpt (written then by `on_train_epoch_end`) is this very state
            raise Preempted(self.signum, int(pl_module.g_steps), self.last_path)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        # last.ckpt follows a wall-clock cadence: after a signal, this epoch end writes it
        if self.signum is not None:
            trainer.save_checkpoint(self.last_path)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self.signum is None or batch_idx + 1 >= trainer.num_training_batches:
            return  # the epoch ends here: its checkpoint is written, then the next step stops
        # the module's own end-of-step hook (step logs, ...) runs after the callbacks'; run
        # it now, since the step ends here
        pl_module.on_train_batch_end(outputs, batch, batch_idx)
        self._save_and_stop(trainer, pl_module, batches_done=batch_idx + 1)

    def _save_and_stop(self, trainer, pl_module, batches_done: int) -> None:
        signum = self.signum
        self._mid_epoch_state = {
            "epoch": trainer.current_epoch, "batches_done": batches_done,
            "rng": rng_states(), "epoch_sums": self._epoch_sums(pl_module),
            # EpochSeeding seeds them at an epoch's start, which a mid-epoch resume skips
            "member_rngs": getattr(pl_module, "member_rng_states", lambda: None)()}
        try:
            trainer.save_checkpoint(self.last_path)
        finally:
            self._mid_epoch_state = None
        requeue_slurm_job(trainer)
        raise Preempted(signum, int(pl_module.g_steps), self.last_path)

    @staticmethod
    def _epoch_sums(pl_module) -> dict | None:
        sums = getattr(pl_module, "_train_logs", None)
        if sums is None:
            return None
        return {"sums": {k: (v.detach().cpu() if torch.is_tensor(v) else v)
                         for k, v in sums.sums.items()},
                "counts": dict(sums.counts), "prog_bar": sorted(sums.prog_bar)}

    # --- checkpoint ---------------------------------------------------------------------
    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        if self._mid_epoch_state is not None:
            checkpoint[RESUME_KEY] = self._mid_epoch_state

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        state = checkpoint.get(RESUME_KEY)
        if not state:
            return
        self._resume = state
        dm = trainer.datamodule
        if dm is not None and hasattr(dm, "skip_batches"):
            dm.skip_batches(int(state["batches_done"]))
