"""Lightning callbacks: sample grids, run-dir files, reproducibility checks."""

from lit_gen.callbacks.run_state import DDPParameterCheck, EpochSeeding, FinalMetrics
from lit_gen.callbacks.samples import SampleGrids, save_grid


def extra_callbacks(cfg, run_dir) -> list:
    """Callbacks that only some configs ask for (metric evaluation, ...)."""
    return []


__all__ = ["DDPParameterCheck", "EpochSeeding", "FinalMetrics", "SampleGrids", "save_grid"]
