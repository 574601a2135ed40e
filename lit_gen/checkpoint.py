"""Loading a trained model from a checkpoint alone (no config needed)."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from lit_gen.errors import CheckpointError


def torch_load(path: str | Path, what: str, fix: str) -> Any:
    """torch.load on CPU, or a CheckpointError naming the file, what it should be and `fix`."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{what} not found: {p}")
    try:
        return torch.load(p, map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, zipfile.BadZipFile,
            ValueError, AttributeError, ModuleNotFoundError) as err:
        raise CheckpointError(f"cannot read {what} {p} ({type(err).__name__}); {fix}") from None


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict, or a CheckpointError saying why it cannot be used."""
    p = Path(path)
    ckpt = torch_load(p, "checkpoint", "it is corrupt or not a lit_gen checkpoint: pass another file")
    if not isinstance(ckpt, dict) or "lit_gen" not in ckpt or "hyper_parameters" not in ckpt:
        raise CheckpointError(f"{p} is not a lit_gen checkpoint (no 'lit_gen' entry); pass a "
                              "checkpoint written by `python -m lit_gen.fit`")
    return ckpt


def load_model(path: str | Path, device: str | torch.device = "cpu"):
    """Rebuild the model of a lit_gen checkpoint with its weights, in eval mode."""
    from lit_gen.models import MODELS

    ckpt = read_checkpoint(path)
    cls_name = ckpt["lit_gen"]["model_class"]
    by_class = {MODELS.get(n).__name__: MODELS.get(n) for n in MODELS.names()}
    if cls_name not in by_class:
        raise CheckpointError(f"{path}: model class '{cls_name}' is unknown to this lit_gen")
    cls = by_class[cls_name]
    model = cls(**ckpt["hyper_parameters"])
    model.load_state_dict(ckpt["state_dict"])
    model.on_load_checkpoint(ckpt)
    return model.to(device).eval()


def stored_config(path: str | Path):
    """The resolved run config saved with the checkpoint."""
    from lit_gen.config import from_container

    ckpt = read_checkpoint(path)
    return from_container(ckpt["hyper_parameters"]["run_config"])
