"""Callbacks that keep a run reproducible and its run directory up to date."""

from __future__ import annotations

import hashlib
import math
import random
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch

from lit_gen.run.dir import update_metrics


def epoch_seed(seed: int, epoch: int, rank: int) -> int:
    """A distinct, reproducible seed per (run seed, epoch, rank)."""
    digest = hashlib.sha256(f"{seed}/{epoch}/{rank}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


class EpochSeeding(L.Callback):
    """Reseeds every RNG at the start of each training epoch from (seed, epoch, rank).

    An epoch's randomness (shuffling, noise, dropout) then depends only on those three, so
    a run resumed at an epoch boundary continues exactly as an uninterrupted run would,
    and ranks draw different noise.
    """

    def __init__(self, seed: int):
        self.seed = seed

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        s = epoch_seed(self.seed, trainer.current_epoch, trainer.global_rank)
        random.seed(s)
        np.random.seed(s)
        torch.manual_seed(s)  # also seeds every CUDA device
        # an ensemble's members draw their noise from streams of their own seeds
        reseed = getattr(pl_module, "reseed_members", None)
        if reseed is not None:
            epoch, rank = trainer.current_epoch, trainer.global_rank
            reseed(lambda member_seed: epoch_seed(member_seed, epoch, rank))


class FinalMetrics(L.Callback):
    """Writes the last value of every logged scalar to metrics.json after each validation
    and at the end of training (rank 0), plus epoch and generator step."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)

    def _write(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        # epoch-level values under their plain names ("train/d_loss", not "..._epoch")
        values = {k.removesuffix("_epoch"): float(v) for k, v in trainer.callback_metrics.items()
                  if torch.is_tensor(v) and v.numel() == 1 and not k.endswith("_step")}
        values["epoch"] = trainer.current_epoch
        values["g_step"] = pl_module.g_steps
        update_metrics(self.run_dir, values)

    def on_validation_end(self, trainer, pl_module) -> None:
        self._write(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        self._write(trainer, pl_module)


class SyncBuffers(L.Callback):
    """Under DDP, copies rank 0's buffers (batch-norm running statistics, ...) to every rank
    at the end of each training epoch, before samples, metrics and checkpoints use them.

    DDP broadcasts buffers only at the start of each forward, so after an epoch's last step
    each rank holds running statistics from its own last batch.
    """

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.world_size < 2:
            return
        for buf in pl_module.buffers():
            torch.distributed.broadcast(buf.data, src=0)


def parameter_digest(module: torch.nn.Module) -> str:
    """sha256 of every parameter and buffer, bit for bit (detects any divergence)."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes()
                 if t.numel() else b"")
    return h.hexdigest()


class DDPParameterCheck(L.Callback):
    """Under distributed training, checks at the end that every rank holds identical
    parameters and buffers, and records it in metrics.json (`ddp_ranks_identical`: 1 or 0)."""

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.world_size < 2:
            return
        digest = parameter_digest(pl_module)
        digests = [None] * trainer.world_size
        torch.distributed.all_gather_object(digests, digest)
        if trainer.is_global_zero:
            update_metrics(self.run_dir, {"ddp_world_size": trainer.world_size,
                                          "ddp_ranks_identical": int(len(set(digests)) == 1)})


class TrainingClock(L.Callback):
    """Wall-clock seconds a run has trained over all its launches: the time so far travels
    in each checkpoint, so a resumed run's done.json (`train_seconds`) counts the launches
    before it up to their last checkpoint (work redone after a kill counts once), not only
    the last launch (`wall_seconds`). None when resumed from a checkpoint without it."""

    KEY = "lit_gen_clock"

    def __init__(self):
        self.start, self.carried = time.perf_counter(), 0.0

    def seconds(self) -> float | None:
        return None if self.carried is None else self.carried + time.perf_counter() - self.start

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[self.KEY] = {"train_seconds": self.seconds()}

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        state = checkpoint.get(self.KEY)
        carried = state.get("train_seconds") if isinstance(state, dict) else None
        # anything but a finite, non-negative number (an old or edited checkpoint): unknown
        ok = isinstance(carried, (int, float)) and math.isfinite(carried) and carried >= 0
        self.carried = float(carried) if ok else None
