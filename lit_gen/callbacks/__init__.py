"""Lightning callbacks: sample grids, run-dir files, reproducibility checks, metrics."""

from lit_gen.callbacks.group import CallbackGroup, RunCheckpoint
from lit_gen.callbacks.metrics import SampleMetrics
from lit_gen.callbacks.progress import StepProgressBar
from lit_gen.callbacks.run_state import DDPParameterCheck, EpochSeeding, FinalMetrics, SyncBuffers
from lit_gen.callbacks.samples import SampleGrids, save_grid


def extra_callbacks(cfg, run_dir) -> list:
    """Callbacks that only some configs ask for (metric evaluation, ...)."""
    from pathlib import Path

    callbacks: list = []
    if cfg.metrics.names:
        callbacks.append(SampleMetrics(cfg, run_dir))
        from lit_gen.metrics import metric_of_key

        if metric_of_key(cfg.run.monitor) is not None:
            # best checkpoints by a sample metric (e.g. run.monitor=fid): saved at the end of
            # the epochs where SampleMetrics logs it (it runs before checkpoint callbacks)
            from lit_gen.run_dir import CHECKPOINTS_DIR

            callbacks.append(RunCheckpoint(
                dirpath=str(Path(run_dir) / CHECKPOINTS_DIR), monitor=cfg.run.monitor,
                mode=cfg.run.monitor_mode, save_top_k=cfg.run.save_top_k,
                every_n_epochs=cfg.metrics.every_n_epochs, save_on_train_epoch_end=True,
                filename=f"best-{cfg.run.monitor}-epoch{{epoch:04d}}",
                auto_insert_metric_name=False))
    return callbacks


__all__ = ["CallbackGroup", "DDPParameterCheck", "EpochSeeding", "FinalMetrics", "RunCheckpoint",
           "SampleGrids", "SampleMetrics", "StepProgressBar", "SyncBuffers", "extra_callbacks",
           "save_grid"]
