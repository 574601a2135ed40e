"""One writer per run dir: `lit_gen.fit` holds `<run dir>/.lock` while it trains.

The lock file says who holds it: pid, host and the process's start time (the kernel's, from
/proc, in clock ticks since boot, with the boot id). A lock is stale only when the same host
shows that no process with that pid and that start time exists: a pid reused by another
process after a reboot or a wrap-around has another start time, and a live holder is never
taken for a dead one. A lock from another host cannot be checked from here and is refused.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from lit_gen.errors import LitGenError

LOCK_FILE = ".lock"
UNREADABLE_STALE_S = 60.0  # a lock file still not valid JSON after this long was never finished


class RunLockedError(LitGenError):
    """Another live process writes this run dir."""


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def process_start_ticks(pid: int) -> int | None:
    """The start time of process `pid` (clock ticks after boot), None when there is none.

    Read from /proc/<pid>/stat: field 22, counted after the command name in parentheses
    (which may itself hold spaces and parentheses)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[19])  # field 22 overall; fields[0] is field 3 (the state)


def holder_info(pid: int | None = None) -> dict:
    pid = os.getpid() if pid is None else pid
    return {"pid": pid, "host": socket.gethostname(), "start_ticks": process_start_ticks(pid),
            "boot_id": _boot_id(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}


def read_lock(run_dir: str | Path) -> dict | None:
    """The holder recorded in a run dir's lock file (None without one; {} when unreadable,
    e.g. caught half-written)."""
    path = Path(run_dir) / LOCK_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    if text.strip().isdigit():  # the sweep runner's older lock: a bare pid of this host
        return {"pid": int(text), "host": socket.gethostname(), "start_ticks": None}
    try:
        info = json.loads(text)
    except json.JSONDecodeError:
        info = None
    if not isinstance(info, dict):
        try:  # being written (a few microseconds), unless it has stayed so for a minute
            old = time.time() - path.stat().st_mtime > UNREADABLE_STALE_S
        except FileNotFoundError:
            return None
        return {"unreadable": True} if old else {}
    return info


def holder_alive(info: dict) -> bool | None:
    """True: the holder runs; False: it certainly does not; None: cannot tell (other host)."""
    if info.get("unreadable"):
        return False
    if not info or info.get("host") != socket.gethostname():
        return None if info else True  # an unreadable lock is being written: treat as held
    if info.get("boot_id") and info["boot_id"] != _boot_id():
        return False  # written before this machine rebooted
    try:
        pid = int(info["pid"])
    except (KeyError, TypeError, ValueError):
        return None
    ticks = process_start_ticks(pid)
    if ticks is None:
        return False
    return info.get("start_ticks") is None or ticks == info["start_ticks"]


def is_locked(run_dir: str | Path) -> bool:
    """True when a live process (or one on another host) holds the run dir."""
    info = read_lock(run_dir)
    return info is not None and holder_alive(info) is not False


def _describe(info: dict) -> str:
    if not info:
        return "a process that is writing its lock file"
    return f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started')}"


class RunLock:
    """`with RunLock(run_dir):` holds the run dir's lock, or raises RunLockedError.

    Created with O_EXCL (two processes cannot both create it); a stale one (see the module
    docstring) is replaced by an atomic rename, so of two processes replacing the same stale
    lock only one wins."""

    def __init__(self, run_dir: str | Path, holder: str = "lit_gen.fit"):
        self.run_dir, self.holder = Path(run_dir), holder
        self.path = self.run_dir / LOCK_FILE
        self.held = False

    def acquire(self) -> RunLock:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        mine = json.dumps(holder_info()) + "\n"
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                info = read_lock(self.run_dir)
                if info is None:
                    continue  # released meanwhile: try again
                alive = holder_alive(info)
                if alive is False:
                    self._replace_stale(info, mine)
                    if read_lock(self.run_dir) == json.loads(mine):
                        self.held = True
                        return self
                    continue
                where = ("; it cannot be checked from this host: if that process is gone, "
                         f"delete {self.path}") if alive is None and info else ""
                raise RunLockedError(
                    f"{self.run_dir} is in use by another {self.holder} "
                    f"({_describe(info)}){where}. Wait for it to end, or choose another "
                    "folder") from None
            with os.fdopen(fd, "w") as f:
                f.write(mine)
            self.held = True
            return self
        raise RunLockedError(f"cannot lock run dir {self.run_dir}: its lock {self.path} keeps "
                             f"changing; is another {self.holder} starting there?")

    def _replace_stale(self, info: dict, mine: str) -> None:
        tmp = self.run_dir / f".lock.{os.getpid()}.tmp"
        tmp.write_text(mine)
        # replace only if the stale holder's file is still the one there
        if read_lock(self.run_dir) == info:
            os.replace(tmp, self.path)
        else:
            tmp.unlink(missing_ok=True)

    def release(self) -> None:
        if self.held:
            info = read_lock(self.run_dir)
            if info and info.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
