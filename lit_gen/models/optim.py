"""Optimizers, LR schedulers and the speed switches of a run (see docs/performance.md).

Optimizers and schedulers are registries (`model.{g,d,e}_optim.name`, `.scheduler`).
Speed switches, each a config key:

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

import inspect
from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

import torch
from torch import nn

from lit_gen.config import OptimConfig, to_container
from lit_gen.errors import ConfigError
from lit_gen.registry import Registry

OPTIMIZERS: Registry = Registry("optimizer")
OPTIMIZERS.add("adam", torch.optim.Adam)
OPTIMIZERS.add("adamw", torch.optim.AdamW)
OPTIMIZERS.add("rmsprop", torch.optim.RMSprop)
OPTIMIZERS.add("sgd", torch.optim.SGD)

SCHEDULERS: Registry = Registry("scheduler")
SCHEDULERS.add("cosine", lambda opt, epochs, **kw: torch.optim.lr_scheduler.CosineAnnealingLR(
    opt, T_max=kw.pop("T_max", epochs), **kw))
SCHEDULERS.add("linear", lambda opt, epochs, **kw: torch.optim.lr_scheduler.LinearLR(
    opt, start_factor=kw.pop("start_factor", 1.0), end_factor=kw.pop("end_factor", 0.0),
    total_iters=kw.pop("total_iters", epochs), **kw))
SCHEDULERS.add("step", lambda opt, epochs, **kw: torch.optim.lr_scheduler.StepLR(
    opt, step_size=kw.pop("step_size", max(epochs // 3, 1)), **kw))
SCHEDULERS.add("exponential", lambda opt, epochs, **kw: torch.optim.lr_scheduler.ExponentialLR(
    opt, gamma=kw.pop("gamma", 0.99), **kw))


IMPLEMENTATION_FLAGS = ("foreach", "fused")  # OptimConfig fields picking torch's kernels


def check_optimizer_config(cfg: dict[str, Any], key: str) -> None:
    """Fail before a run on an unknown optimizer or an implementation flag it lacks."""
    cls = OPTIMIZERS.get(cfg["name"], f"{key}.name")
    if cfg.get("foreach") and cfg.get("fused"):
        raise ConfigError(f"{key}: foreach and fused cannot both be true; pick one "
                          "(fused is one kernel per step, foreach one kernel per op)")
    accepted = inspect.signature(cls.__init__).parameters
    for flag in IMPLEMENTATION_FLAGS:
        if cfg.get(flag) is not None and flag not in accepted:
            raise ConfigError(f"{key}.{flag}: optimizer '{cfg['name']}' has no {flag} "
                              f"implementation; set {key}.{flag}=null")


def build_optimizer(params, cfg: dict[str, Any], key: str) -> torch.optim.Optimizer:
    check_optimizer_config(cfg, key)
    cls = OPTIMIZERS.get(cfg["name"], f"{key}.name")
    kwargs: dict[str, Any] = {"lr": cfg["lr"], "weight_decay": cfg["weight_decay"]}
    if cls in (torch.optim.Adam, torch.optim.AdamW):
        kwargs["betas"] = tuple(cfg["betas"])
    else:
        kwargs["momentum"] = cfg["momentum"]
    # None leaves torch's choice (foreach for CUDA tensors, the per-tensor loop on CPU)
    kwargs.update({f: cfg[f] for f in IMPLEMENTATION_FLAGS if cfg.get(f) is not None})
    return cls(params, **kwargs)


def build_scheduler(opt, cfg: dict[str, Any], max_epochs: int | None, key: str):
    if cfg.get("scheduler") is None:
        return None
    fn = SCHEDULERS.get(cfg["scheduler"], f"{key}.scheduler")
    try:
        return fn(opt, max_epochs or 100, **dict(cfg.get("scheduler_args") or {}))
    except TypeError as err:
        raise ConfigError(f"{key}.scheduler_args: {err}") from None


def default_optim(**overrides) -> dict[str, Any]:
    return {**asdict(OptimConfig()), **overrides}


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
    """Config checks that need more than one section (called by `validation.validate`)."""
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
