"""File I/O every part of lit_gen shares: reading torch files safely, writing files atomically.

A leaf module (it imports nothing of lit_gen but the errors), so data, nets, metrics, models
and commands can all use it.

Reading: every file a user can pass (checkpoints, classifier files) is opened with
`torch.load(weights_only=True)`: tensors, plain containers and numbers only, plus the few
types in `SAFE_GLOBALS`. A pickle that needs anything else (a class to rebuild, a function to
call: how a `__reduce__` payload runs its code) is refused with the name it asked for; its
code never runs.

Writing: a temporary file in the destination's own folder (never TMPDIR, which is often
another filesystem where a rename becomes a copy), flushed and fsync'd, then `os.replace`d:
a reader, or a run killed at any moment, sees the old file or the new one, never half of
one. The temporary file is removed when the write fails; one left by a `kill -9` is named
`.NAME.*.tmp[.suffix]` and removed by `remove_stale_temporaries` when the run dir is next opened.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import pickle
import re
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from lit_gen.errors import CheckpointError

#: types beyond torch's weights-only defaults that lit_gen files may hold (Lightning stores
#: none today: its loop and callback states, optimizer states and lit_gen's hparams are
#: plain containers, numbers, strings and tensors)
SAFE_GLOBALS: list = []

TMP_SUFFIX = ".tmp"
#: permission bits of files lit_gen writes: 0666 less the process umask (0644 under the usual
#: umask 022), as `open()` gives; mkstemp alone would give 0600
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK


def torch_load(path: str | Path, what: str, fix: str) -> Any:
    """torch.load on CPU, weights only; or a CheckpointError naming the file, what it should
    be and `fix` (a file that would run code says what it asked for, and is not run)."""
    p = Path(path)
    if not p.is_file():
        raise CheckpointError(f"{what} not found: {p}")
    _check_crc(p, what, fix)
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            return torch.load(p, map_location="cpu", weights_only=True, mmap=False)
    except pickle.UnpicklingError as err:
        asked = _code_request(err)
        if asked is not None:
            raise CheckpointError(
                f"refused to load {what} {p}: it asks for {asked}, which is not a tensor or "
                "plain value; lit_gen loads files with weights_only=True and never runs code "
                "from them. Use a file written by lit_gen, or re-save its tensors only") from None
        raise CheckpointError(f"cannot read {what} {p} (UnpicklingError); {fix}") from None
    # a corrupt or bit-flipped file can fail anywhere in the unpickler and in torch's zip
    # reader (EOFError, RuntimeError, MemoryError from a garbage size, UnicodeDecodeError, ...):
    # whatever the type, the file cannot be used
    except Exception as err:  # noqa: BLE001
        raise CheckpointError(f"cannot read {what} {p} ({type(err).__name__}); {fix}") from None


def _check_crc(p: Path, what: str, fix: str) -> None:
    """torch's zip format stores a CRC-32 of every record, and torch.load does not check
    them: a bit flipped inside a tensor loads silently. Check them all first."""
    try:
        if not zipfile.is_zipfile(p):
            return  # torch's legacy format, or not a torch file: torch.load says which
        with zipfile.ZipFile(p) as z:
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise CheckpointError(f"cannot read {what} {p} ({type(err).__name__}); {fix}") from None
    if bad is not None:
        raise CheckpointError(f"cannot read {what} {p} (checksum mismatch in {bad.split('/', 1)[-1]}: "
                              f"the file is corrupt); {fix}")


#: pickle opcodes that name or call code (GLOBAL, INST, OBJ, REDUCE, STACK_GLOBAL, NEWOBJ,
#: NEWOBJ_EX): a weights-only load that stops at one of them met a payload, not garbage
CODE_OPCODES = {ord("c"): "GLOBAL", ord("i"): "INST", ord("o"): "OBJ", ord("R"): "REDUCE",
                0x93: "STACK_GLOBAL", 0x81: "NEWOBJ", 0x92: "NEWOBJ_EX"}


def _code_request(err: Exception) -> str | None:
    """What a refused weights-only load asked for (a global's name, or a code opcode), from
    torch's message; None when the file is merely corrupt."""
    text = str(err)
    found = re.search(r"GLOBAL ([\w.]+)", text)
    if found:
        return f"`{found.group(1)}`"
    op = re.search(r"Unsupported operand (\d+)", text)
    if op and int(op.group(1)) in CODE_OPCODES:
        return f"the pickle opcode {CODE_OPCODES[int(op.group(1))]} (code to run)"
    return None


def _fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems (and platforms) refuse fsync on a directory
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path next to `path`; write it inside the block, and on success it is
    fsync'd and renamed over `path`. On any error (or an interrupt) it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the destination's suffix last, for writers that choose the format by it (PNG, npz)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                    suffix=TMP_SUFFIX + path.suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write via a temporary file and rename, so a reader never sees half a file."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """torch.save straight into a temporary file next to `path`, then rename."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def remove_stale_temporaries(*folders: str | Path) -> list[Path]:
    """Remove temporary files that `atomic_path` left behind in `folders` (a process killed
    mid-write); call it only while no other process writes there (the run lock)."""
    removed = []
    for folder in folders:
        folder = Path(folder)
        if folder.is_dir():
            for p in folder.glob(f".*{TMP_SUFFIX}*"):
                if p.is_file():
                    p.unlink(missing_ok=True)
                    removed.append(p)
    return removed


def jsonable(value: Any) -> Any:
    """`value` with tensors/numpy scalars as numbers and non-finite floats as strings."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no nan/inf; keep them visible as strings
    return value


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(Path(path), json.dumps(jsonable(data), indent=2, sort_keys=True) + "\n")
