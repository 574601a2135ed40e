"""`python -m lit_gen.fit --config conf/experiment/NAME.yaml [key=value ...]`: train one run.

Builds the DataModule, model, callbacks, loggers and Trainer from the config; no model
logic lives here.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from lit_gen.errors import CheckpointError, ConfigError, cli_main
from lit_gen.run_dir import CHECKPOINTS_DIR, CONFIG_FILE, RUN_DIR_ENV, SAMPLES_DIR


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="python -m lit_gen.fit",
        description="Train one experiment. Overrides: key=value or --key=value (OmegaConf dotlist).")
    parser.add_argument("--config", action="append", default=[],
                        help="experiment yaml; several merge left to right")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved config and exit")
    return parser.parse_known_args(argv)


def _rank() -> int:
    from lightning.pytorch.utilities import rank_zero_only

    return getattr(rank_zero_only, "rank", 0)


def resolve_run_dir(cfg) -> tuple[Path, str | None]:
    """(run dir, checkpoint to resume from) for this run; checks nothing is overwritten."""
    inherited = os.environ.get(RUN_DIR_ENV)
    if cfg.resume is not None and cfg.resume != "last":
        ckpt = Path(cfg.resume)
        from lit_gen.checkpoint import read_checkpoint

        read_checkpoint(ckpt)  # fail early and clearly on a missing or corrupt file
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
            found = sorted(root.glob(f"{cfg.experiment}-*/{CHECKPOINTS_DIR}/last.ckpt"),
                           key=lambda p: p.stat().st_mtime) if root.is_dir() else []
            if not found:
                raise CheckpointError(f"resume=last: no run of '{cfg.experiment}' with "
                                      f"checkpoints/last.ckpt under {root}/; set run.dir")
            run_dir = found[-1].parent.parent
        ckpt = run_dir / CHECKPOINTS_DIR / "last.ckpt"
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
    if (run_dir / CONFIG_FILE).exists() and _rank() == 0:
        raise ConfigError(f"run dir {run_dir} already holds a run; pass resume=last to "
                          "continue it, or choose another run.dir")
    return run_dir, None


DDP_LAUNCHERS = ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook")


def trainer_kwargs(cfg, model) -> dict:
    """Lightning Trainer arguments from the `trainer` section (nulls: Lightning's default)."""
    from lit_gen.config import to_container

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
    from lit_gen.logging_utils import build_csv_logger, build_wandb_logger

    loggers = [build_csv_logger(run_dir)]
    if cfg.logger.wandb.enabled:
        loggers.append(build_wandb_logger(cfg, run_dir))
    return loggers


def build_callbacks(cfg, run_dir: Path) -> list:
    """lit_gen's callbacks as one `CallbackGroup` (fewer hook calls per batch), then the
    checkpoint callbacks and the progress bar, which Lightning finds by type."""
    from lightning.pytorch.callbacks import Checkpoint

    from lit_gen.callbacks import (
        CallbackGroup,
        DDPParameterCheck,
        EpochSeeding,
        FinalMetrics,
        RunCheckpoint,
        SampleGrids,
        StepProgressBar,
        SyncBuffers,
        extra_callbacks,
    )
    from lit_gen.metrics import metric_of_key

    ckpt_dir = str(run_dir / CHECKPOINTS_DIR)
    # last.ckpt after every epoch, so a killed run can resume (Lightning's save_last only
    # writes it after a top-k save, i.e. at the very end when nothing is monitored)
    checkpoints = [RunCheckpoint(dirpath=ckpt_dir, filename="last", monitor=None, save_top_k=1,
                                   enable_version_counter=False, save_last=False)]
    # a sample metric (fid, ...) is monitored by the checkpoint that extra_callbacks adds
    if cfg.run.monitor and metric_of_key(cfg.run.monitor) is None:
        checkpoints.append(RunCheckpoint(
            dirpath=ckpt_dir, monitor=cfg.run.monitor, mode=cfg.run.monitor_mode,
            save_top_k=cfg.run.save_top_k, filename="best-epoch{epoch:04d}",
            auto_insert_metric_name=False))
    # in this order: FinalMetrics writes metrics.json before SampleMetrics adds its values
    grouped = [EpochSeeding(cfg.seed), SyncBuffers(), SampleGrids(run_dir / SAMPLES_DIR,
               cfg.run.sample_every_n_epochs), FinalMetrics(run_dir), DDPParameterCheck(run_dir)]
    for cb in extra_callbacks(cfg, run_dir):
        (checkpoints if isinstance(cb, Checkpoint) else grouped).append(cb)
    callbacks = [CallbackGroup(grouped), *checkpoints]
    if cfg.trainer.enable_progress_bar:
        # the bar shows the step values the model wrote (host values: no device read), and
        # refreshes on the logging steps
        callbacks.append(StepProgressBar(refresh_rate=max(1, cfg.trainer.log_every_n_steps)))
    return callbacks


#: Lightning warnings about what lit_gen does on purpose
HARMLESS_WARNINGS = (
    ".*does not have many workers.*",
    ".*LeafSpec.*",
    # GenerativeModule moves batches itself (a fast path for tuples of tensors) and converts
    # them for channels_last after the transfer, with any datamodule
    ".*overridden `on_after_batch_transfer` in `LightningModule`.*",
    ".*overridden `transfer_batch_to_device` in `LightningModule`.*",
)


def run(cfg) -> Path:
    """Train the experiment described by a validated config; returns the run dir."""
    import warnings

    import lightning as L

    from lit_gen.data import build_datamodule
    from lit_gen.models import build_model

    for pattern in HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", pattern)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    dm = build_datamodule(cfg.data, seed=cfg.seed)
    dm.setup()  # load (and check) the data before anything is written
    model = build_model(cfg, dm.info().as_dict())
    run_dir, ckpt_path = resolve_run_dir(cfg)
    inherited = os.environ.get(RUN_DIR_ENV)
    os.environ[RUN_DIR_ENV] = str(run_dir)  # DDP processes started later use the same dir
    try:
        return _fit(cfg, dm, model, run_dir, ckpt_path)
    finally:
        if inherited is None:
            os.environ.pop(RUN_DIR_ENV, None)


def _fit(cfg, dm, model, run_dir: Path, ckpt_path: str | None) -> Path:
    import lightning as L
    from omegaconf import OmegaConf

    from lit_gen.provenance import environment_info
    from lit_gen.run_dir import DONE_FILE, ENVIRONMENT_FILE, atomic_write_text, write_json

    if _rank() == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / DONE_FILE).unlink(missing_ok=True)  # a resumed run is unfinished again
        atomic_write_text(run_dir / CONFIG_FILE, OmegaConf.to_yaml(cfg, resolve=True))
    trainer = L.Trainer(
        default_root_dir=str(run_dir),
        logger=build_loggers(cfg, run_dir),
        callbacks=build_callbacks(cfg, run_dir),
        **trainer_kwargs(cfg, model),
    )
    if trainer.is_global_zero:
        write_json(run_dir / ENVIRONMENT_FILE, environment_info(trainer))
    start = time.perf_counter()
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    if trainer.is_global_zero:
        if trainer.state.status == "finished":
            from lit_gen.logging_utils import sync_wandb_summary
            from lit_gen.run_dir import read_metrics

            sync_wandb_summary(trainer.loggers, read_metrics(run_dir))
            # the marker sweeps and bench read: training ended normally, metrics are final
            write_json(run_dir / DONE_FILE, {"epoch": trainer.current_epoch,
                                             "g_step": int(model.g_steps),
                                             "wall_seconds": round(time.perf_counter() - start, 1)})
        print(f"run dir: {run_dir}")
    return run_dir


@cli_main
def main(argv: list[str] | None = None) -> int:
    from omegaconf import OmegaConf

    from lit_gen import config

    args, overrides = parse_args(argv)
    cfg = config.load(args.config, overrides)
    if args.print_config:
        print(OmegaConf.to_yaml(cfg, resolve=True), end="")
        return 0
    run(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
