"""`python -m lit_gen.fit --config conf/experiment/NAME.yaml [key=value ...]`: train one run.

Builds the DataModule, model and Trainer (`lit_gen.run.trainer`) from the config; no model
logic lives here. Everything that can be checked is checked before the run dir changes:
the run dir is writable, the data holds at least one batch, the metrics' feature extractor
loads, and on a resume the checkpoint loads (weights only), its config admits the new one
(`lit_gen.run.resume`) and its weights fit the model. Then the run dir's lock is taken
(`lit_gen.run.lock`: one writer per run dir), and only then is anything in it written.
"""

from __future__ import annotations

import os

# before torch loads its OpenMP runtime, which reads this once (see lit_gen.run.threads)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import sys
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from omegaconf import OmegaConf

from lit_gen.callbacks.run_state import TrainingClock
from lit_gen.data import build_datamodule
from lit_gen.data.members import MemberDataModule
from lit_gen.errors import ConfigError, DataError, cli_main
from lit_gen.io import atomic_write_text, remove_stale_temporaries, write_json
from lit_gen.models import build_model
from lit_gen.run.checkpoint import RunCheckpointIO, check_weights_fit, read_checkpoint
from lit_gen.run.classifiers import ensure_default_classifier
from lit_gen.run.cli import config_from_argv
from lit_gen.run.dir import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    CSV_FILE,
    DONE_FILE,
    ENVIRONMENT_FILE,
    RUN_DIR_ENV,
    SAMPLES_DIR,
    check_writable,
    rank,
    read_metrics,
    resolve_run_dir,
)
from lit_gen.run.lock import RunLock
from lit_gen.run.loggers import sync_wandb_summary
from lit_gen.run.provenance import environment_info
from lit_gen.run.resume import (
    ApplyOptimizerSettings,
    check_resume,
    checkpoint_log_step,
    record_resume,
    truncate_csv,
)
from lit_gen.run.signals import Preempted
from lit_gen.run.threads import (
    apply_thread_policy,
    cuda_queried_per_step,
    skip_cuda_query_without_gpu,
)
from lit_gen.run.trainer import (
    HARMLESS_WARNINGS,
    build_callbacks,
    build_loggers,
    drop_misleading_lightning_lines,
    trainer_kwargs,
)

#: the batch a BatchNorm layer needs in training (statistics of a single example fail)
BATCHNORM_MIN_BATCH = 2


def check_data_size(dm, model, batch_size: int) -> None:
    """Refuse a training set smaller than one batch, or batches BatchNorm cannot train on."""
    n = len(dm.x_train)
    uses_bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if n < batch_size:
        least = f" (at least {BATCHNORM_MIN_BATCH}: the model uses batch norm)" if uses_bn else ""
        raise DataError(f"the training set holds {n} example(s), fewer than one batch "
                        f"(data.batch_size={batch_size}); add data, or set data.batch_size={n} "
                        f"or less{least}")
    if uses_bn and batch_size < BATCHNORM_MIN_BATCH:
        raise DataError(f"data.batch_size={batch_size}: the model uses batch norm, which needs "
                        f"at least {BATCHNORM_MIN_BATCH} examples per batch")


def check_extractor(cfg) -> None:
    """Load the metrics' feature extractor now (a corrupt classifier file fails here, before
    the run dir holds anything)."""
    from lit_gen.metrics import IMAGE_METRICS
    from lit_gen.metrics.extractors import prepare_extractor

    if any(n in IMAGE_METRICS for n in cfg.metrics.names):
        prepare_extractor(cfg.metrics)


def run(cfg) -> Path:
    """Train the experiment described by a validated config; returns the run dir."""
    for pattern in HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", pattern)
    drop_misleading_lightning_lines()
    run_dir, ckpt_path = resolve_run_dir(cfg)
    inherited = os.environ.get(RUN_DIR_ENV)
    writer = rank() == 0 and inherited is None  # DDP ranks started later do not write
    if writer:
        check_writable(run_dir)
        ensure_default_classifier(cfg)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    if cfg.seeds:  # an ensemble: one DataModule per member seed, batched together
        dm = MemberDataModule([build_datamodule(cfg.data, seed=s) for s in cfg.seeds])
    else:
        dm = build_datamodule(cfg.data, seed=cfg.seed)
    dm.setup()  # load (and check) the data before anything is written
    model = build_model(cfg, dm.info().as_dict())
    threads = apply_thread_policy(cfg, model)
    skip_cuda_query_without_gpu()
    threads["cuda_query_per_step"] = cuda_queried_per_step()
    check_data_size(dm, model, cfg.data.batch_size)
    check_extractor(cfg)
    lock = RunLock(run_dir) if writer else None
    if lock is not None:
        lock.acquire()
    os.environ[RUN_DIR_ENV] = str(run_dir)  # DDP processes started later use the same dir
    try:
        if lock is not None:  # a write killed mid-way left its temporary file
            remove_stale_temporaries(run_dir, run_dir / CHECKPOINTS_DIR, run_dir / SAMPLES_DIR)
        ckpt, changes = None, {}
        if ckpt_path is not None:
            # all of it before the run dir changes: a corrupt checkpoint, a refused config
            # change or weights that do not fit leave done.json and config.yaml as they are
            ckpt = read_checkpoint(ckpt_path)
            stored = ckpt["lit_gen"].get("run_config") or \
                (ckpt.get("hyper_parameters") or {}).get("run_config")
            if stored is None:
                raise ConfigError(f"{ckpt_path} holds no run config; resume only checkpoints "
                                  "written by lit_gen.fit")
            changes = check_resume(stored, cfg)
            check_weights_fit(model, ckpt, ckpt_path)
        resumed = None if ckpt is None else {
            "epoch": ckpt.get("epoch"), "global_step": ckpt.get("global_step"),
            "log_step": checkpoint_log_step(ckpt), "changes": changes}
        # Lightning reads the checkpoint through this IO, which hands it over once
        io = RunCheckpointIO((ckpt_path, ckpt) if ckpt is not None else None)
        del ckpt
        return _fit(cfg, dm, model, run_dir, ckpt_path, resumed, io, writer, threads)
    finally:
        if inherited is None:
            os.environ.pop(RUN_DIR_ENV, None)
        if lock is not None:
            lock.release()


def _fit(cfg, dm, model, run_dir: Path, ckpt_path, resumed: dict | None, io, writer: bool,
         threads: dict) -> Path:
    changes = resumed["changes"] if resumed else {}
    if writer:
        (run_dir / DONE_FILE).unlink(missing_ok=True)  # a resumed run is unfinished again
        atomic_write_text(run_dir / CONFIG_FILE, OmegaConf.to_yaml(cfg, resolve=True))
        if resumed is not None:
            if resumed["log_step"] is not None:  # rows a killed run logged after its checkpoint
                truncate_csv(run_dir / CSV_FILE, resumed["log_step"])
            record_resume(run_dir, ckpt_path, resumed, changes)
    clock = TrainingClock()
    callbacks = [*build_callbacks(cfg, run_dir), clock]
    if any(k.startswith(("model.g_optim", "model.d_optim", "model.e_optim")) for k in changes):
        callbacks.append(ApplyOptimizerSettings())
    trainer = L.Trainer(
        default_root_dir=str(run_dir),
        logger=build_loggers(cfg, run_dir),
        callbacks=callbacks,
        plugins=[io],
        **trainer_kwargs(cfg, model),
    )
    if trainer.is_global_zero:
        write_json(run_dir / ENVIRONMENT_FILE, {**environment_info(trainer), "threads": threads})
    start = time.perf_counter()
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    if trainer.is_global_zero:
        if trainer.state.status == "finished":
            sync_wandb_summary(trainer.loggers, read_metrics(run_dir))
            # the marker sweeps and bench read: training ended normally, metrics are final
            total = clock.seconds()
            write_json(run_dir / DONE_FILE, {
                "epoch": trainer.current_epoch, "g_step": int(model.g_steps),
                "wall_seconds": round(time.perf_counter() - start, 1),  # this launch
                **({} if total is None else {"train_seconds": round(total, 1)})})
        print(f"run dir: {run_dir}")
    return run_dir


@cli_main
def main(argv: list[str] | None = None) -> int:
    args, cfg = config_from_argv(argv)
    if args.print_config:
        print(OmegaConf.to_yaml(cfg, resolve=True), end="")
        return 0
    try:
        run(cfg)
    except Preempted as stop:
        print(f"lit_gen.fit: {stop}", file=sys.stderr)
        return stop.code
    return 0


if __name__ == "__main__":
    sys.exit(main())
