"""The Lightning Trainer of a run: its arguments, loggers and callbacks, from the config.

`lit_gen.fit` trains with it; the speed benchmark times exactly the same Trainer.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lit_gen.callbacks import (
    CallbackGroup,
    DDPParameterCheck,
    EpochSeeding,
    FinalMetrics,
    SampleGrids,
    SampleMetrics,
    StepProgressBar,
    SyncBuffers,
)
from lit_gen.config import to_container
from lit_gen.run.checkpoint import build_checkpoints
from lit_gen.run.dir import CHECKPOINTS_DIR, LAST_CHECKPOINT, SAMPLES_DIR
from lit_gen.run.loggers import build_csv_logger, build_wandb_logger
from lit_gen.run.signals import Preemption

DDP_LAUNCHERS = ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook")

#: Lightning warnings about what lit_gen does on purpose
HARMLESS_WARNINGS = (
    ".*does not have many workers.*",
    ".*LeafSpec.*",
    # GenerativeModule moves batches itself (a fast path for tuples of tensors) and converts
    # them for channels_last after the transfer, with any datamodule
    ".*overridden `on_after_batch_transfer` in `LightningModule`.*",
    ".*overridden `transfer_batch_to_device` in `LightningModule`.*",
    # a pre-emption checkpoint restarts mid-epoch: the data module skips the batches done
    ".*resuming from a checkpoint that ended before the epoch ended.*",
    # data sets without a validation split (the toys) and ensembles return no val loader
    ".*Total length of `list` across ranks is zero.*",
)


#: Lightning log lines kept out of run logs: (logger, message start). The advert is logged
#: at every fit; the other comes with every full checkpoint save and reads like an unsafe
#: load (lit_gen reads every checkpoint with weights_only=True)
MISLEADING_LINES = (
    ("lightning.pytorch.utilities.rank_zero", "💡 Tip:"),
    ("lightning.pytorch.trainer.connectors.checkpoint_connector", "`weights_only` was not set"),
)


class _DropLines(logging.Filter):
    def __init__(self, start: str):
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.start)


# one filter per line (a logger may carry several); addFilter ignores a filter it holds
_FILTERS = [(name, _DropLines(start)) for name, start in MISLEADING_LINES]


def drop_misleading_lightning_lines() -> None:
    """Keep MISLEADING_LINES out of run logs (Lightning's other lines stay); idempotent."""
    for name, f in _FILTERS:
        logging.getLogger(name).addFilter(f)


def trainer_kwargs(cfg, model) -> dict:
    """Lightning Trainer arguments from the `trainer` section (nulls: Lightning's default)."""
    kwargs = {k: v for k, v in to_container(cfg.trainer).items() if v is not None}
    # manual optimization: the model clips its own gradients
    kwargs.pop("gradient_clip_val", None)
    kwargs.pop("gradient_clip_algorithm", None)
    if kwargs.get("strategy") in DDP_LAUNCHERS and model.ddp_find_unused_parameters:
        # the players alternate: a D step leaves G without gradients, and vice versa;
        # Lightning registers a find-unused variant of every DDP launcher
        kwargs["strategy"] = f"{kwargs['strategy']}_find_unused_parameters_true"
    return kwargs


def build_loggers(cfg, run_dir: Path) -> list:
    loggers = [build_csv_logger(run_dir)]
    if cfg.logger.wandb.enabled:
        loggers.append(build_wandb_logger(cfg, run_dir))
    return loggers


def build_callbacks(cfg, run_dir: Path) -> list:
    """lit_gen's callbacks as one `CallbackGroup` (fewer hook calls per batch), then the
    checkpoint callbacks and the progress bar, which Lightning finds by type."""
    # in this order: FinalMetrics writes metrics.json before SampleMetrics adds its values
    grouped = [EpochSeeding(cfg.seed), SyncBuffers(), SampleGrids(run_dir / SAMPLES_DIR,
               cfg.run.sample_every_n_epochs, cfg.run.write_every_s), FinalMetrics(run_dir), DDPParameterCheck(run_dir)]
    if cfg.metrics.names:
        grouped.append(SampleMetrics(cfg, run_dir))
    # last: on SIGTERM / SIGUSR1 it saves at the end of a step the others have seen
    grouped.append(Preemption(run_dir / CHECKPOINTS_DIR / LAST_CHECKPOINT))
    callbacks = [CallbackGroup(grouped), *build_checkpoints(cfg, run_dir)]
    if cfg.trainer.enable_progress_bar:
        # the bar shows the step values the model wrote (host values: no device read), and
        # refreshes on the logging steps
        callbacks.append(StepProgressBar(refresh_rate=max(1, cfg.trainer.log_every_n_steps)))
    return callbacks
