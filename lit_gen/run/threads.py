"""Process-wide CPU settings of a run, applied once before training: the number of intra-op
threads torch uses, and no CUDA query per optimizer step on a machine without a GPU.

Thread policy (docs/performance.md, "Threads"): torch's default is one intra-op thread per
core, and every parallel op then waits for its slowest thread, so a run beside any other
busy process (a second run, a test suite, a browser) slows down by 2x or more, and two such
runs side by side by 10x and more. The policy gives a run

    threads = clamp(parameters // PARAMETERS_PER_THREAD, 1, cpus - 1)   (1 on 1-2 cpus)

where `cpus` is the number of CPUs this process may run on: one thread for small models
(their ops are too small to split), more for larger ones, and never every CPU, so one
neighbour cannot stall every parallel op. Explicit choices win, in this order:
`run.threads` in the config, then the OMP_NUM_THREADS environment variable.

`lit_gen.fit` also sets OMP_WAIT_POLICY=PASSIVE (unless set) before torch loads its OpenMP
runtime, which reads it once: idle threads then sleep instead of spinning against
neighbours when a run does use several threads.
"""

from __future__ import annotations

import os
from typing import Any

import torch

#: a run gets one intra-op thread per this many parameters (at least 1, at most cpus - 1)
PARAMETERS_PER_THREAD = 2_000_000


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask: taskset, cgroup cpusets, SLURM)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def policy_threads(parameters: int, cpus: int) -> int:
    """The default number of intra-op threads for a model of `parameters` on `cpus` CPUs."""
    if cpus <= 2:
        return 1
    return max(1, min(cpus - 1, parameters // PARAMETERS_PER_THREAD))


def choose_threads(requested: int | None, parameters: int, cpus: int,
                   env: dict[str, str] | os._Environ = os.environ) -> tuple[int, str]:
    """(threads, where the number came from): `run.threads`, OMP_NUM_THREADS, or the policy."""
    if requested is not None:
        return int(requested), "run.threads"
    if env.get("OMP_NUM_THREADS", "").strip().isdigit() and int(env["OMP_NUM_THREADS"]) > 0:
        return int(env["OMP_NUM_THREADS"]), "OMP_NUM_THREADS"
    return policy_threads(parameters, cpus), "policy"


def apply_thread_policy(cfg, model: torch.nn.Module) -> dict[str, Any]:
    """Set torch's intra-op threads for this run; returns the record for environment.json."""
    parameters = sum(p.numel() for p in model.parameters())
    cpus = available_cpus()
    threads, source = choose_threads(cfg.run.threads, parameters, cpus)
    torch.set_num_threads(threads)
    return {"intra_op_threads": threads, "source": source, "cpus": cpus,
            "model_parameters": parameters,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "libgomp default")}


def skip_cuda_query_without_gpu() -> bool:
    """Stop the CUDA availability query in every Adam/AdamW step on a machine without a GPU.

    Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1 (so that availability checks do not
    initialise CUDA before processes fork). With it, and before CUDA is initialised, torch
    answers `torch.cuda.is_available()` by asking NVML for the device count each time
    instead of caching it, and Adam asks once per `step()`
    (`Optimizer._accelerator_graph_capture_health_check`): about 0.2 ms per optimizer step
    on a CPU-only machine. Where no GPU is visible there is nothing a fork could break, so
    the variable is removed and torch's cached device count answers instead. Returns
    whether it was removed. Machines with a GPU keep Lightning's setting (there torch caches
    the count once CUDA is initialised).
    """
    if os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") != "1" or torch.cuda.device_count() > 0:
        return False
    del os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"]
    return True


def cuda_queried_per_step() -> bool:
    """Whether each Adam/AdamW step still asks NVML for the device count (see above)."""
    return os.environ.get("PYTORCH_NVML_BASED_CUDA_CHECK") == "1" and not torch.cuda.is_initialized()
