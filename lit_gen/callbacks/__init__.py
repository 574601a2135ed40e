"""Lightning callbacks: sample grids, run-dir files, reproducibility checks, metrics."""

from lit_gen.callbacks.group import CallbackGroup, RunCheckpoint
from lit_gen.callbacks.metrics import SampleMetrics
from lit_gen.callbacks.progress import StepProgressBar
from lit_gen.callbacks.run_state import DDPParameterCheck, EpochSeeding, FinalMetrics, SyncBuffers
from lit_gen.callbacks.samples import SampleGrids, save_grid

__all__ = ["CallbackGroup", "DDPParameterCheck", "EpochSeeding", "FinalMetrics", "RunCheckpoint",
           "SampleGrids", "SampleMetrics", "StepProgressBar", "SyncBuffers", "save_grid"]
