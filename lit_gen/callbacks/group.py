"""One Lightning callback that runs several: fewer hook dispatches per training batch."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Checkpoint, EarlyStopping, ModelCheckpoint, ProgressBar

#: every hook Lightning calls on a callback with (trainer, pl_module, ...)
HOOKS: tuple[str, ...] = tuple(
    name for name, _ in inspect.getmembers(L.Callback, inspect.isfunction)
    if name.startswith("on_") or name in ("setup", "teardown"))


def overrides(callback: L.Callback, hook: str) -> bool:
    """True when the callback's class defines the hook (not Lightning's no-op)."""
    return getattr(type(callback), hook) is not getattr(L.Callback, hook)


class CallbackGroup(L.Callback):
    """Runs member callbacks in order, each hook only on the members that define it.

    Lightning calls every hook of every callback on every batch (on_train_batch_start,
    on_before_backward, on_after_backward, on_before_optimizer_step, on_train_batch_end,
    ...), whether the callback defines it or not, and each call costs a few microseconds of
    bookkeeping. lit_gen's own callbacks act at epoch and run boundaries only; grouped,
    they cost one no-op call per batch hook instead of one per callback.

    Checkpoint, early-stopping and progress-bar callbacks stay outside (Lightning finds
    and orders them by type). State (`state_dict`) is kept per member under its
    `state_key`, so a member with state resumes as it would on its own.
    """

    def __init__(self, callbacks: Sequence[L.Callback]):
        for cb in callbacks:
            if isinstance(cb, Checkpoint | EarlyStopping | ProgressBar):
                raise ValueError(f"{type(cb).__name__} must be passed to the Trainer itself, "
                                 "not grouped: Lightning finds it by type")
        self.callbacks = list(callbacks)
        # Lightning reads state_key on every hook call (profiler labels): computed once
        self._state_key = "CallbackGroup[" + ",".join(cb.state_key for cb in self.callbacks) + "]"
        for hook in HOOKS:
            members = [cb for cb in self.callbacks if overrides(cb, hook)]
            if members:  # an instance attribute shadows the no-op of L.Callback
                setattr(self, hook, _Dispatch(hook, members))

    @property
    def state_key(self) -> str:
        return self._state_key

    def state_dict(self) -> dict[str, Any]:
        return {cb.state_key: state for cb in self.callbacks if (state := cb.state_dict())}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for cb in self.callbacks:
            if cb.state_key in state_dict:
                cb.load_state_dict(state_dict[cb.state_key])


class _Dispatch:
    """Calls one hook on each member, in order."""

    __slots__ = ("hook", "members")

    def __init__(self, hook: str, members: list[L.Callback]):
        self.hook = hook
        self.members = [getattr(cb, hook) for cb in members]

    def __call__(self, trainer, pl_module, *args, **kwargs) -> None:
        for fn in self.members:
            fn(trainer, pl_module, *args, **kwargs)


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, with its `state_key` computed once.

    Lightning reads `state_key` on every hook call (profiler labels), and ModelCheckpoint
    builds it each time from a repr of its settings, which never change after init. The
    key is the one ModelCheckpoint gives (`ModelCheckpoint{...}`), so checkpoints written
    with either class resume with either."""

    @property
    def state_key(self) -> str:
        key = self.__dict__.get("_cached_state_key")
        if key is None:
            key = self._generate_state_key(
                monitor=self.monitor, mode=self.mode,
                every_n_train_steps=self._every_n_train_steps,
                every_n_epochs=self._every_n_epochs,
                train_time_interval=self._train_time_interval)
            key = "ModelCheckpoint" + key.removeprefix(type(self).__qualname__)
            self._cached_state_key = key
        return key
