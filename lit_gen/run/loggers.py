"""wandb through Lightning's WandbLogger: online with credentials, offline without."""

from __future__ import annotations

import netrc
import os
from pathlib import Path

from lit_gen.config import to_container
from lit_gen.errors import ConfigError


def has_wandb_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        auth = netrc.netrc().authenticators("api.wandb.ai")
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return auth is not None


def wandb_mode(cfg) -> str:
    mode = cfg.logger.wandb.mode or os.environ.get("WANDB_MODE")
    if mode is None:
        mode = "online" if has_wandb_credentials() else "offline"
    if mode not in ("online", "offline", "disabled"):
        raise ConfigError(f"logger.wandb.mode must be online, offline or disabled, got '{mode}'")
    return mode


def build_wandb_logger(cfg, run_dir: Path):
    from lightning.pytorch.loggers import WandbLogger


    w = cfg.logger.wandb
    mode = wandb_mode(cfg)
    os.environ["WANDB_MODE"] = mode  # processes started later (DDP ranks) agree
    logger = WandbLogger(project=w.project, entity=w.entity, save_dir=str(run_dir),
                         name=run_dir.name, tags=list(w.tags), group=w.group,
                         offline=mode == "offline", mode=mode)
    logger.log_hyperparams(to_container(cfg))
    return logger


def build_csv_logger(run_dir: Path):
    """Lightning's CSVLogger writing <run_dir>/metrics.csv, appending when a run resumes
    (Lightning's own writer deletes an existing metrics.csv)."""
    import csv

    from lightning.pytorch.loggers import CSVLogger
    from lightning.pytorch.loggers.csv_logs import ExperimentWriter

    class AppendingWriter(ExperimentWriter):
        def _check_log_dir_exists(self) -> None:
            if os.path.isfile(self.metrics_file_path):
                with open(self.metrics_file_path, newline="") as f:
                    header = next(csv.reader(f), [])
                self.metrics_keys = sorted(header)

    class RunCSVLogger(CSVLogger):
        @property
        def experiment(self):
            if self._experiment is None:
                os.makedirs(self.root_dir, exist_ok=True)
                self._experiment = AppendingWriter(log_dir=self.log_dir)
            return self._experiment

    return RunCSVLogger(save_dir=str(run_dir), name="", version="")


def sync_wandb_summary(loggers, metrics: dict) -> None:
    """Put the final metrics.json (numbers and the `protocol` object) into each wandb run's
    summary, so a W&B sweep's `metric` and `lit_gen.bench ENTITY/PROJECT/SWEEP_ID` read the
    same values as the run dir."""
    from lightning.pytorch.loggers import WandbLogger

    for logger in loggers:
        if isinstance(logger, WandbLogger) and metrics:
            logger.experiment.summary.update(metrics)
