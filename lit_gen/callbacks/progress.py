"""The progress bar, with the training step values lit_gen writes to the loggers itself."""

from __future__ import annotations

from lightning.pytorch.callbacks import TQDMProgressBar


class StepProgressBar(TQDMProgressBar):
    """Lightning's tqdm bar plus the model's latest `train/<k>_step` values marked for the
    bar (`GenerativeModule.progress_bar_step_metrics`): lit_gen hands step values to the
    loggers directly, so they are not in `trainer.progress_bar_metrics`."""

    def get_metrics(self, trainer, pl_module) -> dict:
        items = super().get_metrics(trainer, pl_module)
        step_values = getattr(pl_module, "progress_bar_step_metrics", None)
        if step_values is not None:
            items.update(step_values())
        return items
