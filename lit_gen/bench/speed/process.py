"""Whole-process throughput: `python -m lit_gen.fit` against an independent plain-PyTorch
script (`script.py`) on the same experiment, nets and training tensor, each as its own
process, N and 3N epochs; (time(3N) - time(N)) / (2N epochs of steps) is the time per step
with start-up and the end-of-run writes cancelled, and time(N) - N epochs of steps is the
start-up. lit_gen's run dir does what a real run does by default (last.ckpt and sample grids
at their default cadence, metrics.csv, metrics.json, environment.json); validation is off on
both sides (`trainer.limit_val_batches=0`), since the plain script has none.

Next to it, the in-epoch figure of the same experiment (the in-process window of
`train.py`), and the thread policy's figures: one run quiet, beside one busy process, and
two runs side by side.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from lit_gen.bench.speed.lit import ROOT, load_data, run_bare, run_lit
from lit_gen.bench.speed.measure import median, status
from lit_gen.bench.speed.plain import run_plain
from lit_gen.bench.speed.settings import (
    BUSY_NEIGHBOUR_TARGET,
    EXPERIMENT_EPOCHS,
    EXPERIMENTS,
    RATIO_TARGET,
    SIDE_BY_SIDE_TARGET,
    Settings,
    TrainCase,
    is_k_side,
)

#: both sides train without validation (the plain script has none) and monitor nothing
NO_VALIDATION = ["trainer.limit_val_batches=0", "trainer.num_sanity_val_steps=0",
                 "run.monitor=null"]
BUSY_LOOP = "while True: pass"


def experiment_file(name: str) -> str:
    return str(ROOT / "conf" / "experiment" / f"{name}.yaml")


def load_avg() -> float:
    return round(os.getloadavg()[0], 2)


def child_env(threads: int | None, fit_root: Path) -> dict[str, str]:
    """The environment of a measured process: torch threads fixed (or left to the run's
    policy when None), wandb offline, lit_gen imported from `fit_root`."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "PYTORCH_NVML_BASED_CUDA_CHECK")}
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    env["WANDB_MODE"] = "offline"
    env["PYTHONPATH"] = str(fit_root)
    return env


def start(argv: list[str], env: dict[str, str], cwd: Path, log_file: Path) -> subprocess.Popen:
    out = open(log_file, "w")  # noqa: SIM115 (closed by finish)
    return subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen, log_file: Path) -> None:
    proc.wait()
    proc.stdout and proc.stdout.close()
    if proc.returncode != 0:
        tail = log_file.read_text()[-2000:]
        raise RuntimeError(f"measured process failed ({proc.returncode}): {' '.join(proc.args)}"
                           f"\n{tail}")


def timed(argv: list[str], env: dict[str, str], cwd: Path, log_file: Path,
          clock: str = "wall") -> float:
    """Seconds of one process, from start to exit: wall clock, or (clock "process") the CPU
    time it used (user + system, its children included), which a busy neighbour on a
    shared machine changes far less. Processes timed this way run one at a time."""
    t0, cpu0 = time.perf_counter(), children_cpu_seconds()
    finish(start(argv, env, cwd, log_file), log_file)
    return time.perf_counter() - t0 if clock == "wall" else children_cpu_seconds() - cpu0


def children_cpu_seconds() -> float:
    """User + system CPU seconds of this process's finished (waited-for) children."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Experiment:
    """One experiment prepared for both sides: its resolved config and training tensor."""

    def __init__(self, name: str, tmp: Path, s: Settings):
        from omegaconf import OmegaConf

        from lit_gen import validation

        self.name, self.tmp = name, tmp
        self.cfg = validation.load([experiment_file(name)], NO_VALIDATION + [f"seed={s.seed}"])
        self.dm = load_data(self.cfg)
        self.config_file = tmp / f"{name}.yaml"
        self.config_file.write_text(OmegaConf.to_yaml(self.cfg, resolve=True))
        self.data_file = tmp / f"{name}-x_train.pt"
        torch.save(self.dm.x_train.contiguous(), self.data_file)
        self.batch_size = self.cfg.data.batch_size

    def steps(self, epochs: int, steps_per_batch: int = 1) -> int:
        """Plain steps in `epochs` epochs (drop_last, as lit_gen's loader)."""
        return epochs * (len(self.dm.x_train) // self.batch_size // steps_per_batch) * steps_per_batch

    def fit_argv(self, epochs: int, run_dir: Path, extra: list[str] = ()) -> list[str]:
        """`lit_gen.fit` of the experiment, its --config relative to the process's cwd: each
        checkout (this one, --before-root's) trains its own version of the experiment."""
        return [sys.executable, "-m", "lit_gen.fit", "--config",
                f"conf/experiment/{self.name}.yaml",
                *NO_VALIDATION, f"trainer.max_epochs={epochs}", f"run.dir={run_dir}",
                f"seed={self.cfg.seed}", *extra]

    def script_argv(self, mode: str, epochs: int, out: Path, threads: int | None,
                    steps_per_batch: int = 1) -> list[str]:
        import json

        spec = out.with_suffix(".json")
        spec.write_text(json.dumps({"mode": mode, "config": str(self.config_file),
                                    "data": str(self.data_file), "epochs": epochs,
                                    "threads": threads, "out": str(out),
                                    "steps_per_batch": steps_per_batch}))
        code = f"from lit_gen.bench.speed.script import train; train({str(spec)!r})"
        return [sys.executable, "-c", code]


def epochs_of(name: str, s: Settings) -> int:
    return s.epochs or EXPERIMENT_EPOCHS.get(name, 2)


def sides(s: Settings) -> dict[str, tuple[str, int]]:
    """Whole-process sides: name -> (kind, steps per Lightning batch); `lit_gen_before`
    is `lit_gen.fit` of the `--before-root` checkout, `lit_gen_kK` this checkout's with
    `data.group_batches=K`, `lightning_kK` bare Lightning taking K plain steps per batch."""
    out = {"plain": ("plain", 1), "lightning": ("bare", 1), "lit_gen": ("lit_gen", 1)}
    if s.before_root:
        out["lit_gen_before"] = ("lit_gen", 1)
    for k in s.steps_per_batch:
        if k > 1:
            out.update({f"lightning_k{k}": ("bare", k), f"lit_gen_k{k}": ("lit_gen", k)})
    return out



def in_epoch_config(name: str, seed: int, device: torch.device, batches: int, group: int = 1):
    """The experiment's config for one epoch of `batches` training batches (the data's: an
    int limit counts them), `group` of them per Lightning batch, no validation: what the
    in-epoch window and `opcount` train."""
    from lit_gen import validation

    return validation.load([experiment_file(name)], NO_VALIDATION + [
        f"seed={seed}", "trainer.max_epochs=1", f"trainer.limit_train_batches={batches}",
        "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
        f"trainer.accelerator={device.type}", "trainer.devices=1", f"data.group_batches={group}"])


def in_epoch(exp: Experiment, s: Settings, device: torch.device) -> dict[str, float]:
    """ms per step inside the epoch (the in-process window) for plain / bare / lit_gen, and
    `lit_gen_kK` (data.group_batches=K) for each --steps-per-batch K > 1. The window counts
    Lightning batches: the K sides time one group of warm-up and as many whole groups as the
    epoch holds after it, divided by their steps; the sides run in turn each repeat."""
    n_batches = len(exp.dm.x_train) // exp.batch_size
    warmup = min(s.warmup, max(1, n_batches // 4))
    steps = min(s.steps * 3, n_batches - warmup)
    si = replace(s, batch_size=exp.batch_size, warmup=warmup, steps=steps)

    def config(group: int, batches: int):
        return in_epoch_config(exp.name, s.seed, device, batches, group)

    cfg = config(1, warmup + steps)
    case = TrainCase(cfg.model.name, int(exp.dm.info().shape[-1]), exp.name, "dataloader")
    runs: dict[str, Callable[[], float]] = {
        "plain": lambda: run_plain(cfg, si, case, device, exp.dm)[s.clock] / steps,
        "lightning": lambda: run_bare(cfg, si, case, device, exp.dm)[s.clock] / steps,
        # its own data module: cfg's group size
        "lit_gen": lambda: run_lit(cfg, si, device)[s.clock] / steps}

    def grouped(k: int, groups: int) -> Callable[[], float]:
        ck, sk = config(k, (groups + 1) * k), replace(si, warmup=1, steps=groups)
        return lambda: run_lit(ck, sk, device)[s.clock] / (groups * k)

    for k in s.steps_per_batch:
        if k > 1 and n_batches // k >= 2:
            runs[f"lit_gen_k{k}"] = grouped(k, n_batches // k - 1)
    times: dict[str, list[float]] = {k: [] for k in runs}
    for r in range(s.repeats):
        names = list(runs)
        for side in names[r % len(names):] + names[:r % len(names)]:
            times[side].append(runs[side]() * 1e3)
    return {side: round(median(v), 4) for side, v in times.items()}


def bench_experiment(name: str, s: Settings, device: torch.device, fit_root: Path,
                     log: Callable) -> dict[str, Any]:
    """The whole-process row of one experiment: per-step ms and start-up of each side, the
    ratios, and the in-epoch figure."""
    epochs = epochs_of(name, s)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        exp = Experiment(name, tmp, s)
        # lit_gen.fit from fit_root (and --before-root's checkout, interleaved); the
        # reference scripts always from this one
        roots = {"lit_gen": fit_root, "lit_gen_before": Path(s.before_root or fit_root),
                 "script": ROOT}
        envs = {k: child_env(s.process_threads, root) for k, root in roots.items()}
        all_sides = sides(s)
        per_step: dict[str, list[float]] = {k: [] for k in all_sides}
        startup: dict[str, list[float]] = {k: [] for k in all_sides}
        loads = [load_avg()]
        for r in range(s.process_repeats):
            names = list(all_sides)
            order = names[r % len(names):] + names[:r % len(names)]
            for side in (order if r % 2 == 0 else order[::-1]):
                kind, k = all_sides[side]
                wall = {}
                for mult in ((1, 3) if r % 2 == 0 else (3, 1)):
                    e = epochs * mult
                    out = tmp / f"{side}-r{r}-e{e}"
                    if kind == "lit_gen":
                        root = "lit_gen_before" if side == "lit_gen_before" else "lit_gen"
                        group = [f"data.group_batches={k}"] if k > 1 else []
                        argv, env, cwd = exp.fit_argv(e, out, group), envs[root], roots[root]
                    else:
                        argv = exp.script_argv(kind, e, out, s.process_threads, k)
                        env, cwd = envs["script"], ROOT
                    wall[mult] = timed(argv, env, cwd, tmp / f"{out.name}.log", s.clock)
                # the bare loop drops an epoch's last K-1 batches, lit_gen's last group is short
                kb = k if kind == "bare" else 1
                steps_1, steps_3 = exp.steps(epochs, kb), exp.steps(3 * epochs, kb)
                ms = (wall[3] - wall[1]) / (steps_3 - steps_1) * 1e3
                per_step[side].append(ms)
                startup[side].append(wall[1] - steps_1 * ms / 1e3)
            loads.append(load_avg())
        torch.set_num_threads(s.process_threads)
        inside = in_epoch(exp, s, device)
        row: dict[str, Any] = {
            "experiment": name, "label": EXPERIMENTS.get(name, name),
            "epochs": [epochs, 3 * epochs],
            "steps": [exp.steps(epochs), exp.steps(3 * epochs)], "batch_size": exp.batch_size,
            "threads": s.process_threads, "load_avg": loads, "in_epoch_ms_per_step": inside}
    for side in all_sides:
        row[side] = {"ms_per_step": round(median(per_step[side]), 4),
                     "runs_ms_per_step": [round(v, 4) for v in per_step[side]],
                     "startup_s": round(median(startup[side]), 2)}
    plain = row["plain"]["ms_per_step"]
    row["ratio"] = round(plain / row["lit_gen"]["ms_per_step"], 4)  # throughput lit_gen / plain
    row["lightning_ratio"] = round(plain / row["lightning"]["ms_per_step"], 4)
    row["ratio_vs_lightning"] = round(row["lightning"]["ms_per_step"]
                                      / row["lit_gen"]["ms_per_step"], 4)
    for side in all_sides:
        if is_k_side(side):
            row[side]["ratio"] = round(plain / row[side]["ms_per_step"], 4)
            if side in inside:  # lit_gen_kK: its in-epoch figure too
                row[side]["in_epoch_ratio"] = round(inside["plain"] / inside[side], 4)
    if "lit_gen_before" in row:
        row["lit_gen_before"]["ratio"] = round(plain / row["lit_gen_before"]["ms_per_step"], 4)
        row["before_root"] = s.before_root
    row["in_epoch_ratio"] = round(inside["plain"] / inside["lit_gen"], 4)
    row["target"] = f"whole-process ratio >= {RATIO_TARGET}"
    row["status"] = status(row["ratio"] >= RATIO_TARGET)
    noisy = [side for side in all_sides if row[side]["ms_per_step"] <= 0]
    if noisy:  # 3N epochs no slower than N: the difference is the machine's noise
        row["status"] = "NOISE"
        row["noise"] = (f"{', '.join(noisy)}: the {3 * epochs}-epoch runs took no longer than "
                        f"the {epochs}-epoch ones; rerun on a quieter machine or with more "
                        "--epochs")
    log(f"  {name:<14} ms/step plain {plain:.3f}  lightning {row['lightning']['ms_per_step']:.3f}"
        f"  lit_gen {row['lit_gen']['ms_per_step']:.3f}  ratio {row['ratio']:.3f}  "
        f"(in-epoch {row['in_epoch_ratio']:.3f})  start-up lit_gen "
        f"{row['lit_gen']['startup_s']} s, plain {row['plain']['startup_s']} s  {row['status']}")
    return row


def bench_thread_policy(name: str, s: Settings, fit_root: Path,
                        log: Callable) -> list[dict[str, Any]]:
    """Whole-process wall time of default runs (no thread setting: the run's policy) quiet,
    beside one busy single-threaded process, and two started side by side; for this
    checkout and, interleaved, the `--before-root` one."""
    epochs = epochs_of(name, s)
    roots = {"lit_gen": fit_root, **({"lit_gen_before": Path(s.before_root)}
                                     if s.before_root else {})}
    times = {k: {"quiet": [], "busy_neighbour": [], "side_by_side": []} for k in roots}
    loads = [load_avg()]
    threads = {}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        exp = Experiment(name, tmp, s)
        for r in range(s.process_repeats):
            for key, root in (roots.items() if r % 2 == 0 else reversed(roots.items())):
                env, t = child_env(None, root), times[key]
                run = tmp / f"{key}-q{r}"
                t["quiet"].append(timed(exp.fit_argv(epochs, run), env, root, tmp / "q.log"))
                threads[key] = json_of(run / "environment.json").get("threads", {})
                hog = subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
                try:
                    t["busy_neighbour"].append(timed(exp.fit_argv(epochs, tmp / f"{key}-b{r}"),
                                                     env, root, tmp / "b.log"))
                finally:
                    hog.kill()
                    hog.wait()
                t0 = time.perf_counter()
                procs = [(start(exp.fit_argv(epochs, tmp / f"{key}-p{r}{i}"), env, root,
                                tmp / f"p{i}.log"), tmp / f"p{i}.log") for i in range(2)]
                ends = []
                for proc, log_file in procs:
                    finish(proc, log_file)
                    ends.append(time.perf_counter() - t0)
                t["side_by_side"].append(max(ends))  # the slower of the two counts
                loads.append(load_avg())
    rows = []
    for key, root in roots.items():
        q, b, p = (median(times[key][k]) for k in ("quiet", "busy_neighbour", "side_by_side"))
        row = {"experiment": name, "side": key, "epochs": epochs, "fit_root": str(root),
               "threads": threads.get(key, {}), "quiet_s": round(q, 2),
               "busy_neighbour_s": round(b, 2), "side_by_side_s": round(p, 2),
               "runs": times[key], "busy_ratio": round(b / q, 3),
               "side_by_side_ratio": round(p / q, 3), "load_avg": loads}
        row["status"] = status(row["busy_ratio"] <= BUSY_NEIGHBOUR_TARGET
                               and row["side_by_side_ratio"] <= SIDE_BY_SIDE_TARGET)
        row["target"] = (f"busy neighbour <= {BUSY_NEIGHBOUR_TARGET}x quiet, two side by side "
                         f"<= {SIDE_BY_SIDE_TARGET}x")
        log(f"  threads {name} {key}: quiet {q:.1f} s, beside a busy process {b:.1f} s "
            f"(x{b / q:.2f}), two side by side {p:.1f} s (x{p / q:.2f}); {row['threads']}")
        rows.append(row)
    return rows


def json_of(path: Path) -> dict:
    import json

    return json.loads(path.read_text()) if path.is_file() else {}
