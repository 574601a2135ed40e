"""`python -m lit_gen.fit --config conf/experiment/NAME.yaml [key=value ...]`: train one run.

Builds the DataModule, model and Trainer (`lit_gen.run.trainer`) from the config; no model
logic lives here.
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
from omegaconf import OmegaConf

from lit_gen.data import build_datamodule
from lit_gen.data.members import MemberDataModule
from lit_gen.errors import cli_main
from lit_gen.io import atomic_write_text, write_json
from lit_gen.models import build_model
from lit_gen.run.checkpoint import read_checkpoint
from lit_gen.run.cli import config_from_argv
from lit_gen.run.dir import (
    CONFIG_FILE,
    DONE_FILE,
    ENVIRONMENT_FILE,
    RUN_DIR_ENV,
    rank,
    read_metrics,
    resolve_run_dir,
)
from lit_gen.run.loggers import sync_wandb_summary
from lit_gen.run.provenance import environment_info
from lit_gen.run.threads import (
    apply_thread_policy,
    cuda_queried_per_step,
    skip_cuda_query_without_gpu,
)
from lit_gen.run.trainer import HARMLESS_WARNINGS, build_callbacks, build_loggers, trainer_kwargs


def run(cfg) -> Path:
    """Train the experiment described by a validated config; returns the run dir."""
    for pattern in HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", pattern)
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
    run_dir, ckpt_path = resolve_run_dir(cfg)
    if ckpt_path is not None:
        read_checkpoint(ckpt_path)  # fail early and clearly on a missing or corrupt file
    inherited = os.environ.get(RUN_DIR_ENV)
    os.environ[RUN_DIR_ENV] = str(run_dir)  # DDP processes started later use the same dir
    try:
        return _fit(cfg, dm, model, run_dir, ckpt_path, threads)
    finally:
        if inherited is None:
            os.environ.pop(RUN_DIR_ENV, None)


def _fit(cfg, dm, model, run_dir: Path, ckpt_path: str | None, threads: dict) -> Path:
    if rank() == 0:
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
        write_json(run_dir / ENVIRONMENT_FILE, {**environment_info(trainer), "threads": threads})
    start = time.perf_counter()
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    if trainer.is_global_zero:
        if trainer.state.status == "finished":
            sync_wandb_summary(trainer.loggers, read_metrics(run_dir))
            # the marker sweeps and bench read: training ended normally, metrics are final
            write_json(run_dir / DONE_FILE, {"epoch": trainer.current_epoch,
                                             "g_step": int(model.g_steps),
                                             "wall_seconds": round(time.perf_counter() - start, 1)})
        print(f"run dir: {run_dir}")
    return run_dir


@cli_main
def main(argv: list[str] | None = None) -> int:
    args, cfg = config_from_argv(argv)
    if args.print_config:
        print(OmegaConf.to_yaml(cfg, resolve=True), end="")
        return 0
    run(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
