"""Speed switches of a run, each a config key (see docs/performance.md):

- `model.compile=true`: `torch.compile` of the nets, in place (`nn.Module.compile()`), so
  `state_dict()` keys, checkpoints and EMA copies are unchanged;
- `model.channels_last=true`: channels_last memory format for 4D weights (image batches are
  converted in `GenerativeModule.on_after_batch_transfer`);
- `model.{g,d,e}_optim.foreach` / `.fused`: torch's multi-tensor / fused optimizer kernels;
- `trainer.precision=bf16-mixed | 16-mixed`: Lightning's autocast (+ grad scaling for fp16).
  Gradient penalties compute input gradients in fp32 outside autocast and eagerly
  (lit_gen/losses/penalties.py), and gradient clipping runs after unscaling.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from lit_gen.errors import ConfigError

_APPLIED = "_lit_gen_fast_paths_applied"


def apply_fast_paths(module: nn.Module, nets: Iterable[nn.Module | None], *, compile: bool,
                     channels_last: bool) -> None:
    """channels_last for the whole module, then compile each of `nets` in place.

    Idempotent (Lightning calls `configure_model` at every fit/validate/test).
    """
    if getattr(module, _APPLIED, False):
        return
    if channels_last:
        module.to(memory_format=torch.channels_last)
    if compile:
        for net in nets:
            if net is not None:
                net.compile()
    object.__setattr__(module, _APPLIED, True)


def is_compiled(net: nn.Module) -> bool:
    return getattr(net, "_compiled_call_impl", None) is not None


def validate_fast_paths(cfg) -> None:
    """Config checks that need more than one section (called by `config.validate`)."""
    from lit_gen.config import to_container
    from lit_gen.models.base import check_optimizer_config

    m = cfg.model
    optims = {f"model.{k}": m[k] for k in ("g_optim", "d_optim", "e_optim") if m.get(k) is not None}
    for key, optim in optims.items():
        check_optimizer_config(to_container(optim), key)
    precision = str(cfg.trainer.precision)
    if precision in ("16", "16-mixed") and cfg.trainer.gradient_clip_val:
        for key, optim in optims.items():
            if optim.get("fused"):
                raise ConfigError(
                    f"{key}.fused=true with trainer.precision={precision} and gradient clipping: "
                    "a fused optimizer unscales inside its step, so clipping would see scaled "
                    f"gradients; set {key}.fused=false (foreach is fine)")
