"""Checkpoints of a run: which ones it keeps (the policy), how they are written and read
(`RunCheckpointIO`: atomic writes in the checkpoint's own folder, weights-only reads), and
loading a model back from one alone (no config needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException

from lit_gen.callbacks import RunCheckpoint
from lit_gen.callbacks.cadence import WallClockCadence
from lit_gen.config import from_container
from lit_gen.errors import CheckpointError, LitGenError
from lit_gen.io import atomic_torch_save, torch_load
from lit_gen.metrics import metric_of_key
from lit_gen.models import MODELS
from lit_gen.run.dir import CHECKPOINTS_DIR, LAST_CHECKPOINT


class LastCheckpoint(RunCheckpoint):
    """last.ckpt, for resuming: at the epoch ends where the wall-clock cadence is due
    (`WallClockCadence`: `run.write_every_s` apart, and 50x a save's cost, so saving costs
    < 2 % of any run), at the end of training, and when a signal stops the run (SIGTERM,
    which Lightning turns into `SIGTERMException`, or Ctrl-C). A run killed without warning
    (SIGKILL, power loss) resumes from at most one interval ago."""

    def __init__(self, dirpath: str, write_every_s: float):
        super().__init__(dirpath=dirpath, filename=Path(LAST_CHECKPOINT).stem, monitor=None,
                         save_top_k=1, enable_version_counter=False, save_last=False)
        self.cadence = WallClockCadence(write_every_s)

    def _save(self, trainer) -> None:
        self._save_topk_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_start(self, trainer, pl_module) -> None:
        self.cadence.start()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._should_skip_saving_checkpoint(trainer):
            return
        # every rank saves or none: rank 0's clock decides
        if trainer.strategy.broadcast(self.cadence.due()):
            self.cadence.run(lambda: self._save(trainer))

    def on_validation_end(self, trainer, pl_module) -> None:
        pass  # saved at the train epoch end, which follows validation

    def on_train_end(self, trainer, pl_module) -> None:
        if not self._should_skip_saving_checkpoint(trainer):
            self._save(trainer)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        # only when stopped from outside: an error's state is not worth resuming from
        if isinstance(exception, SIGTERMException | KeyboardInterrupt) \
                and not self._should_skip_saving_checkpoint(trainer):
            self._save(trainer)


def build_checkpoints(cfg, run_dir: Path) -> list[RunCheckpoint]:
    """The checkpoint callbacks of a run: last.ckpt, plus the best ones by `run.monitor`."""
    ckpt_dir = str(Path(run_dir) / CHECKPOINTS_DIR)
    # Lightning's save_last only writes last.ckpt after a top-k save (at the very end when
    # nothing is monitored): its own callback keeps a killed run resumable
    checkpoints: list[RunCheckpoint] = [LastCheckpoint(ckpt_dir, cfg.run.write_every_s)]
    if not cfg.run.monitor:
        return checkpoints
    if metric_of_key(cfg.run.monitor) is None:  # a logged training/validation value
        checkpoints.append(RunCheckpoint(
            dirpath=ckpt_dir, monitor=cfg.run.monitor, mode=cfg.run.monitor_mode,
            save_top_k=cfg.run.save_top_k, filename="best-epoch{epoch:04d}",
            auto_insert_metric_name=False))
    elif cfg.metrics.names:
        # a sample metric (e.g. run.monitor=fid): saved at the end of the epochs where
        # SampleMetrics logs it (it runs before the checkpoint callbacks)
        checkpoints.append(RunCheckpoint(
            dirpath=ckpt_dir, monitor=cfg.run.monitor, mode=cfg.run.monitor_mode,
            save_top_k=cfg.run.save_top_k, every_n_epochs=cfg.metrics.every_n_epochs,
            save_on_train_epoch_end=True, filename=f"best-{cfg.run.monitor}-epoch{{epoch:04d}}",
            auto_insert_metric_name=False))
    return checkpoints


class RunCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint IO for local files, made safe.

    Saving: torch.save into a temporary file in the checkpoint's folder, fsync, os.replace
    (Lightning's own goes through fsspec, which stages the file in TMPDIR and moves it: a
    copy when TMPDIR is another filesystem, so a kill leaves a truncated checkpoint and the
    staged file behind). Loading: `read_checkpoint` (weights only, clear errors), or the
    checkpoint `fit` has already read and checked (`preloaded`: path and dict), handed over
    once."""

    def __init__(self, preloaded: tuple[str, dict[str, Any]] | None = None):
        super().__init__()
        self._preloaded = preloaded

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options=None) -> None:
        if storage_options is not None:
            raise TypeError("RunCheckpointIO takes no storage_options")
        atomic_torch_save(checkpoint, path)

    def load_checkpoint(self, path, map_location=None, weights_only=None) -> dict[str, Any]:
        if self._preloaded is not None and str(self._preloaded[0]) == str(path):
            ckpt, self._preloaded = self._preloaded[1], None
            return ckpt
        return read_checkpoint(path)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict, or a CheckpointError saying why it cannot be used."""
    p = Path(path)
    ckpt = torch_load(p, "checkpoint", "it is corrupt or not a lit_gen checkpoint: pass another file")
    if not isinstance(ckpt, dict) or "lit_gen" not in ckpt or "hyper_parameters" not in ckpt:
        raise CheckpointError(f"{p} is not a lit_gen checkpoint (no 'lit_gen' entry); pass a "
                              "checkpoint written by `python -m lit_gen.fit`")
    return ckpt


def model_entry(ckpt: dict[str, Any], path: str | Path) -> tuple[str, dict[str, Any]]:
    """(registry name, constructor arguments) of a checkpoint's model.

    Checkpoints name the registry entry (`lit_gen.model`, e.g. "wae_gan"). Older ones named
    the class (`lit_gen.model_class`) and kept the whole run config among the
    hyper-parameters; they still load: the run config is dropped from the arguments, and
    the VAE's `binarize` is read from its data section."""
    state = ckpt["lit_gen"]
    hparams = dict(ckpt["hyper_parameters"])
    name = state.get("model")
    if name is None and "model_class" in state:  # the older, class-name form
        by_class = {MODELS.get(n).__name__: n for n in MODELS.names()}
        name = by_class.get(state["model_class"])
        if name is None:
            raise CheckpointError(f"{path}: model class '{state['model_class']}' is unknown to "
                                  f"this lit_gen; known models: {', '.join(MODELS.names())}")
        run_config = hparams.pop("run_config", None) or {}
        if "binarize" in MODELS.get(name).hparam_names():
            hparams["binarize"] = run_config.get("data", {}).get("binarize")
    if name not in MODELS:
        raise CheckpointError(f"{path}: model '{name}' is unknown to this lit_gen; known "
                              f"models: {', '.join(MODELS.names())}")
    return name, hparams


def load_model(path: str | Path, device: str | torch.device = "cpu", member: int | None = None):
    """Rebuild the model of a lit_gen checkpoint with its weights, in eval mode; `member`
    selects the ensemble member that samples (config `seeds`)."""
    ckpt = read_checkpoint(path)
    name, hparams = model_entry(ckpt, path)
    try:
        model = MODELS.get(name)(**hparams)
    except (TypeError, ValueError, KeyError, LitGenError) as err:
        raise CheckpointError(f"{path}: cannot rebuild its {name} model from the stored "
                              f"hyper-parameters ({err}); pass a checkpoint written by this "
                              "lit_gen") from None
    check_weights_fit(model, ckpt, path)
    model.load_state_dict(ckpt["state_dict"])
    model.on_load_checkpoint(ckpt)
    model.run_config = ckpt["lit_gen"].get("run_config") or ckpt["hyper_parameters"].get("run_config")
    if member is not None:
        model.select_member(member)
    return model.to(device).eval()


def check_weights_fit(model: torch.nn.Module, ckpt: dict[str, Any], path: str | Path) -> None:
    """A CheckpointError unless the checkpoint's weights load into `model` exactly (same
    names, same shapes)."""
    state = ckpt.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} holds no state_dict; pass a lit_gen checkpoint")
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if torch.is_tensor(state[k])
                    and tuple(state[k].shape) != tuple(own[k].shape))
    if missing or unexpected or shapes:
        parts = [f"{what} {', '.join(keys[:3])}{' ...' if len(keys) > 3 else ''}"
                 for what, keys in (("missing", missing), ("unexpected", unexpected),
                                    ("other shapes", shapes)) if keys]
        raise CheckpointError(f"the weights in {path} do not fit the configured model "
                              f"({'; '.join(parts)}): the model or its nets differ from the "
                              "checkpoint's")


def stored_config(path: str | Path):
    """The resolved run config saved with the checkpoint (in its lit_gen section; older
    checkpoints kept it among the hyper-parameters)."""
    ckpt = read_checkpoint(path)
    stored = ckpt["lit_gen"].get("run_config") or ckpt["hyper_parameters"].get("run_config")
    if stored is None:
        raise CheckpointError(f"{path} holds no run config (not written by `python -m "
                              "lit_gen.fit`); evaluate it with an explicit --config")
    return from_container(stored)
