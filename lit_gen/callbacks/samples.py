"""Sample grids from the fixed-noise buffer, periodically and at the end (rank 0 only)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from lit_gen.callbacks.cadence import WallClockCadence
from lit_gen.io import atomic_path
from lit_gen.models.base import Grid

MIN_SIDE = 64  # pixels: smaller images are enlarged (nearest neighbour) to at least this side


def enlarge_factor(side: int, min_side: int = MIN_SIDE) -> int:
    """The smallest integer k with side * k >= min_side (1 for images already that large):
    8 px -> 8, 16 px -> 4, 28 px -> 3, 32 px -> 2."""
    return max(1, -(-min_side // max(int(side), 1)))


def enlarge(x: torch.Tensor, factor: int) -> torch.Tensor:
    """(..., H, W) -> (..., H * factor, W * factor), each pixel a factor x factor block."""
    return x if factor == 1 else x.repeat_interleave(factor, -2).repeat_interleave(factor, -1)


def save_grid(grid: Grid, path: Path, data: torch.Tensor | None = None) -> Path:
    """PNG of an image grid, or a scatter of 2D points over `data` (N, 2)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    x = grid.x.detach().float().cpu()
    with atomic_path(path) as tmp:  # a grid is never seen half-written
        if x.ndim == 2:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(5, 5), dpi=100)
            if data is not None:
                d = data[:2000].float().cpu()
                ax.scatter(d[:, 0], d[:, 1], s=4, c="0.75", label="data")
            ax.scatter(x[:, 0], x[:, 1], s=6, c="tab:red", label="samples")
            ax.set_aspect("equal")
            ax.legend(loc="upper right", fontsize=8)
            fig.tight_layout()
            fig.savefig(tmp)
            plt.close(fig)
        else:
            from torchvision.utils import save_image

            # a 16 px digit is unreadable at 1:1; enlarge so a person can see it
            k = enlarge_factor(x.shape[-1])
            save_image(enlarge(x, k), tmp, nrow=grid.nrow, normalize=True, value_range=(-1, 1),
                       padding=k)
    return path


class SampleGrids(L.Callback):
    """Writes samples/<grid>_epoch<E>.png periodically and <grid>_final.png at the end.

    Periodic grids: every `every_n_epochs` epochs when it is set; else at the epoch ends
    where the wall-clock cadence is due (`WallClockCadence`: at least `write_every_s`
    seconds apart, and 50x a grid's cost, so grids take < 2 % of any run). Grids come from
    `pl_module.sample_grids()`; they also go to wandb when it is enabled.
    """

    def __init__(self, out_dir: str | Path, every_n_epochs: int | None = None,
                 write_every_s: float = 60.0):
        self.out_dir = Path(out_dir)
        self.every_n_epochs = every_n_epochs
        self.cadence = WallClockCadence(write_every_s)

    def _write(self, trainer: L.Trainer, pl_module, tag: str) -> None:
        if not trainer.is_global_zero:
            return
        dm = trainer.datamodule
        data = getattr(dm, "x_train", None) if getattr(dm, "kind", "") == "toy" else None
        paths = []
        for name, grid in pl_module.sample_grids().items():
            paths.append(save_grid(grid, self.out_dir / f"{name}_{tag}.png", data))
        for logger in trainer.loggers:
            if type(logger).__name__ == "WandbLogger":
                logger.log_image(key="samples", images=[str(p) for p in paths],
                                 caption=[p.stem for p in paths], step=trainer.global_step)

    def on_train_start(self, trainer, pl_module) -> None:
        self.cadence.start()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch + 1
        due = epoch % self.every_n_epochs == 0 if self.every_n_epochs else self.cadence.due()
        if due:  # rank 0 alone writes grids: the ranks need not agree
            self.cadence.run(lambda: self._write(trainer, pl_module, f"epoch{epoch:04d}"))

    def on_train_end(self, trainer, pl_module) -> None:
        self._write(trainer, pl_module, "final")
