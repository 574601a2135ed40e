"""User-facing errors and the command-line wrapper that turns them into exit codes (2 for
a mistake the user can fix, 3 for a training run stopped by non-finite values)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable


class LitGenError(Exception):
    """A mistake the user can fix (bad config, missing data, unreadable checkpoint).

    The message is shown as is, without a traceback; it names the problem and the fix.
    `exit_code` is what a command exits with.
    """

    exit_code = 2


class ConfigError(LitGenError):
    """An invalid configuration value, key or name."""


class DataError(LitGenError):
    """A dataset that is missing, unreadable or corrupt."""


class CheckpointError(LitGenError):
    """A checkpoint that is missing or cannot be read."""


class NonFiniteError(LitGenError):
    """Training met a non-finite loss, gradient or parameter (`run.on_nonfinite=stop`):
    the run stops, its last finite checkpoint kept, and the command exits 3."""

    exit_code = 3


EXIT_USER_ERROR = LitGenError.exit_code


def cli_main(fn: Callable[..., int | None]) -> Callable[..., int]:
    """Wrap a command's main(): a LitGenError prints `error: ...` and exits with its
    `exit_code` (2; 3 for NonFiniteError), no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs) -> int:
        try:
            code = fn(*args, **kwargs)
        except LitGenError as err:
            print(f"error: {err}", file=sys.stderr)
            return err.exit_code
        return 0 if code is None else int(code)

    return wrapper
