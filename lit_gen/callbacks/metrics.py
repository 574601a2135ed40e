"""Sample-quality metrics during training: every `metrics.every_n_epochs` and at the end."""

from __future__ import annotations

from pathlib import Path

import lightning as L
from omegaconf import OmegaConf

from lit_gen.metrics import IMAGE_METRICS
from lit_gen.metrics.evaluator import Evaluator
from lit_gen.metrics.latent_samplers import prepare_latent_sampler
from lit_gen.run.dir import update_metrics


class SampleMetrics(L.Callback):
    """Computes `metrics.names` on samples of the (EMA, when enabled) generator.

    At the end of every `every_n_epochs`-th training epoch (and of the last one) every rank
    draws its share of the samples with `pl_module.sample(n, labels)`, rank 0 computes the
    metrics on all of them, and every rank logs the same numbers with `pl_module.log` (so
    `ModelCheckpoint(monitor="fid")` sees them). If training stops elsewhere (max_steps,
    max_time) the metrics are computed once more in `on_train_end` and sent to the loggers.
    Rank 0 merges the values and a `protocol` object into metrics.json. With
    `metrics.curve_names` the every-`every_n_epochs` evaluations compute only those (the
    curve; also_latent_samplers are left to the last evaluation), the last one all of
    `names`: the full evaluation costs several times a small model's epochs.

    Args:
        cfg: the full run config (uses `metrics`, `seed`).
        run_dir: the run directory (metrics.json).
    """

    def __init__(self, cfg, run_dir: str | Path):
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.every = cfg.metrics.every_n_epochs
        self.evaluator = None
        self.curve_evaluator = None  # metrics.curve_names, when set
        self.also: dict[str, Evaluator] = {}  # metrics.also_latent_samplers -> its evaluator
        self._evaluated_at: int | None = None  # g_steps of the last evaluation
        self._full_at: int | None = None  # g_steps of the last evaluation of all names
        self._last: dict | None = None  # its values and protocol

    def setup(self, trainer, pl_module, stage: str) -> None:

        if stage != "fit":
            return
        self.evaluator = Evaluator(self.cfg.metrics, trainer.datamodule, seed=self.cfg.seed)
        if self.cfg.metrics.also_latent_samplers:
            # the same image metrics (and protocol) under another sampler; nothing else
            m = OmegaConf.merge(self.cfg.metrics, {"names": [
                n for n in self.cfg.metrics.names if n in IMAGE_METRICS]})
            # (metrics.latent_sampler itself is the main evaluation: not repeated)
            self.also = {name: Evaluator(m, trainer.datamodule, seed=self.cfg.seed)
                         for name in self.cfg.metrics.also_latent_samplers
                         if name != self.cfg.metrics.latent_sampler}
        curve = self.cfg.metrics.curve_names
        if curve is not None and list(curve) != list(self.cfg.metrics.names):
            self.curve_evaluator = Evaluator(OmegaConf.merge(self.cfg.metrics, {"names": list(curve)}),
                                             trainer.datamodule, seed=self.cfg.seed)
        if trainer.is_global_zero:
            for evaluator in (self.evaluator, *self.also.values()):
                evaluator.prepare()  # resolve (download once) the extractor weights
            if self.curve_evaluator is not None:  # a subset of names: the same extractor
                self.curve_evaluator.extractor = self.evaluator.extractor

    def _evaluate(self, trainer, pl_module, epochs_done: int, full: bool = True) -> dict[str, float]:
        main = self.evaluator if full or self.curve_evaluator is None else self.curve_evaluator
        if self.cfg.metrics.latent_sampler != "prior":
            # refitted on the current codes at every evaluation, identically on every rank
            sampler, proto = prepare_latent_sampler(pl_module, self.cfg.metrics.latent_sampler, None,
                                                    trainer.datamodule, seed=self.cfg.seed)
            main.latent_sampler, main.latent_sampler_protocol = sampler, proto
        values, protocol = main.evaluate_model(pl_module, tag=pl_module.g_steps)
        for name, evaluator in (self.also.items() if main is self.evaluator else ()):
            evaluator.latent_sampler, evaluator.latent_sampler_protocol = prepare_latent_sampler(
                pl_module, name, None, trainer.datamodule, seed=self.cfg.seed)
            more, more_protocol = evaluator.evaluate_model(pl_module, tag=pl_module.g_steps)
            values.update({f"{name}/{k}": v for k, v in more.items()})
            protocol.setdefault("also_latent_samplers", {})[name] = more_protocol
        members = self._member_values(pl_module, values, main)
        protocol.update(epoch=epochs_done, g_step=pl_module.g_steps,
                        ema=getattr(pl_module, "generator_ema", None) is not None,
                        world_size=trainer.world_size)
        # an ensemble's top-level values (logged, monitored) are member 0's; every member's
        # are in `members`, which lit_gen.bench reads as one run per member
        self._last = {**values, "protocol": protocol, **({"members": members} if members else {})}
        if trainer.is_global_zero:
            update_metrics(self.run_dir, self._last)
        self._evaluated_at = pl_module.g_steps
        if main is self.evaluator:
            self._full_at = pl_module.g_steps
        return values

    def _member_values(self, pl_module, first: dict, evaluator: Evaluator) -> list[dict] | None:
        """Each member's metrics in an ensemble (config `seeds`), with its seed."""
        seeds = getattr(pl_module, "member_seeds", None)
        if not seeds or len(seeds) == 1:
            return None
        out = [{"seed": seeds[0], **first}]
        for k in range(1, len(seeds)):
            with pl_module.as_member(k):
                values, _ = evaluator.evaluate_model(pl_module, tag=pl_module.g_steps)
            out.append({"seed": seeds[k], **values})
        return out

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        epoch = trainer.current_epoch + 1
        due = self.every is not None and epoch % self.every == 0
        last = trainer.max_epochs is not None and trainer.max_epochs > 0 and epoch >= trainer.max_epochs
        if not (due or last) or self._evaluated_at == pl_module.g_steps:
            return
        for key, value in self._evaluate(trainer, pl_module, epoch, full=last).items():
            pl_module.log(key, float(value), on_step=False, on_epoch=True, prog_bar=key == "fid")

    def on_train_end(self, trainer, pl_module) -> None:
        if self._full_at == pl_module.g_steps:
            # FinalMetrics has just written the logged (float32) copies; keep the exact values
            if trainer.is_global_zero and self._last:
                update_metrics(self.run_dir, self._last)
            return
        values = self._evaluate(trainer, pl_module, trainer.current_epoch)
        for logger in trainer.loggers:
            logger.log_metrics(values, step=trainer.global_step)
