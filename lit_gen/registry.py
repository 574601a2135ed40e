"""Name -> object registries: every pluggable piece (model, net, loss, dataset...) is found by name.

An unknown name fails with the list of valid names, never with a silent fallback.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

from lit_gen.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """A named collection of classes or functions.

    Args:
        kind: what the entries are ("model", "loss", ...), used in error messages.
    """

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = obj
            return obj

        return decorator

    def add(self, name: str, obj: T) -> T:
        return self.register(name)(obj)

    def get(self, name: str, key: str | None = None) -> T:
        """The entry called `name`; `key` is the config key it came from, for the message."""
        if name not in self._entries:
            where = f"{key}: " if key else ""
            raise ConfigError(
                f"{where}unknown {self.kind} '{name}'. Valid {self.kind}s: {', '.join(self.names())}"
            )
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self):
        return iter(self.names())


def check_kwargs(
    fn: Callable, kwargs: Mapping[str, Any], key: str, reserved: Iterable[str] = ()
) -> None:
    """Fail with the valid names when `kwargs` holds a name that `fn` does not accept.

    `reserved` are arguments the caller fills in itself (shapes, latent size), so they are
    neither accepted from config nor listed as valid.
    """
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    valid = [
        n
        for n, p in params.items()
        if n not in ("self", *reserved)
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    for name in kwargs:
        if name not in valid or name in reserved:
            raise ConfigError(
                f"unknown key '{key}.{name}'. Valid keys: {', '.join(sorted(valid)) or '(none)'}"
            )
