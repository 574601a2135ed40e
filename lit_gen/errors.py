"""User-facing errors and the command-line wrapper that turns them into exit code 2."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable


class LitGenError(Exception):
    """A mistake the user can fix (bad config, missing data, unreadable checkpoint).

    The message is shown as is, without a traceback; it names the problem and the fix.
    """


class ConfigError(LitGenError):
    """An invalid configuration value, key or name."""


class DataError(LitGenError):
    """A dataset that is missing, unreadable or corrupt."""


class CheckpointError(LitGenError):
    """A checkpoint that is missing or cannot be read."""


EXIT_USER_ERROR = 2


def cli_main(fn: Callable[..., int | None]) -> Callable[..., int]:
    """Wrap a command's main(): a LitGenError prints `error: ...` and exits 2, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs) -> int:
        try:
            code = fn(*args, **kwargs)
        except LitGenError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_USER_ERROR
        return 0 if code is None else int(code)

    return wrapper
