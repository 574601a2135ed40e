"""Timing, memory and environment helpers shared by every section of the speed benchmark."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import platform
import statistics
import time
import warnings
from collections.abc import Iterator
from typing import Any

import torch

from lit_gen.errors import ConfigError
from lit_gen.run.provenance import cpu_name


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is visible; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"--device must be auto, cpu or cuda, got '{name}'")
    return torch.device(name)


def environment(device: torch.device) -> dict[str, Any]:
    import lightning

    env = {"device": device.type, "cpu": cpu_name(), "cpu_threads": torch.get_num_threads(),
           "cpu_count": os.cpu_count(), "torch": torch.__version__,
           "lightning": lightning.__version__, "python": platform.python_version()}
    try:
        env["load_average_1min"] = os.getloadavg()[0]
    except OSError:
        pass
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
    return env


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepWindow:
    """Times batches warmup..warmup+steps-1: from the end of batch `warmup - 1` to the end of
    the last one, synchronising the device at both ends."""

    def __init__(self, warmup: int, steps: int, device: torch.device):
        if warmup < 1 or steps < 1:
            raise ConfigError("--warmup and --steps must be >= 1")
        self.warmup, self.steps, self.device = warmup, steps, device
        self.t0: tuple[float, float] | None = None
        self.t1: tuple[float, float] | None = None

    @property
    def total(self) -> int:
        return self.warmup + self.steps

    def batch_end(self, batch_idx: int) -> None:
        if batch_idx == self.warmup - 1:
            synchronize(self.device)
            self.t0 = (time.perf_counter(), time.process_time())
        elif batch_idx == self.total - 1:
            synchronize(self.device)
            self.t1 = (time.perf_counter(), time.process_time())

    @property
    def seconds(self) -> dict[str, float]:
        """{"wall": s, "process": s} of the window."""
        if self.t0 is None or self.t1 is None:
            raise RuntimeError(f"the timing window did not complete ({self.total} batches needed)")
        return {"wall": self.t1[0] - self.t0[0], "process": self.t1[1] - self.t0[1]}


def clock_now(clock: str, device: torch.device) -> float:
    """Seconds on the chosen clock ("wall" or "process" CPU time), after a device sync."""
    synchronize(device)
    return time.perf_counter() if clock == "wall" else time.process_time()


def _read_status_kb(key: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


@contextlib.contextmanager
def peak_memory(device: torch.device, out: dict) -> Iterator[None]:
    """Peak CPU RSS (MB) and peak CUDA allocation (MB) of the block, into `out`.

    On Linux the RSS high-water mark is reset first (/proc/self/clear_refs), so the figure
    is this block's peak; elsewhere it is the process's peak so far (resource.ru_maxrss).
    """
    gc.collect()
    reset = False
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        pass
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    yield
    hwm = _read_status_kb("VmHWM") if reset else None
    if hwm is None:
        import resource

        hwm = float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # kB on Linux
    out["peak_rss_mb"] = round(hwm / 1024, 1)
    out["peak_rss_scope"] = "block" if reset else "process"
    if device.type == "cuda":
        out["gpu_peak_allocated_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def status(ok: bool | None) -> str:
    return "SKIP" if ok is None else ("PASS" if ok else "FAIL")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence Lightning's banners and known-harmless warnings during measured runs."""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric", "lightning")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        from lit_gen.run.trainer import HARMLESS_WARNINGS

        for pattern in (*HARMLESS_WARNINGS, ".*smaller than the logging interval.*",
                        ".*GPU available but not used.*", ".*precision.*", ".*TF32.*",
                        ".*Checkpoint directory.*exists and is not empty.*"):
            warnings.filterwarnings("ignore", pattern)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)
