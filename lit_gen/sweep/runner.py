"""`python -m lit_gen.sweep sweeps/X.yaml`: run a W&B sweep file without a W&B server.

W&B's open-source sweep engine (the `sweeps` package, the one behind `wandb sweep`) chooses
the runs (grid, random, bayes; bayes sees the metric of every finished run). Each run is a
`python -m lit_gen.fit` subprocess with the sweep's command line, written into
`<root>/<run name>/` (a name made from its parameters). Runs go one after another,
`--parallel K` at a time, or one per GPU with `--gpus 0,1,...` (CUDA_VISIBLE_DEVICES).

Re-running the same command resumes the sweep: finished runs (done.json + metrics.json) are
skipped, unfinished ones continue from their last.ckpt (`resume=last`) or start again, and a
random/bayes sweep continues with the runs it had drawn (kept in `<root>/sweep.json`).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import random
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lit_gen.errors import ConfigError, LitGenError, cli_main
from lit_gen.io import write_json
from lit_gen.run.cli import parse_args as parse_fit_args
from lit_gen.run.dir import CHECKPOINTS_DIR, CONFIG_FILE, is_finished, read_metrics
from lit_gen.run.lock import RunLock, is_locked, read_lock
from lit_gen.sweep.file import (
    STATE_FILE,
    SweepFile,
    import_sweeps,
    load_sweep,
    params_hash,
    run_name,
)
from lit_gen.validation import load

LOG_FILE = "sweep.log"  # a run's stdout and stderr, appended at each launch
ATTEMPTS_DIR = ".attempts"  # unfinished run dirs without a checkpoint are moved here
RESERVED_KEYS = ("run.dir", "resume")  # set by the runner for each run
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class PlannedRun:
    name: str
    params: dict[str, Any]


@dataclass
class Launched:
    """A run's subprocess, its open log file, its slot and start time."""

    proc: subprocess.Popen
    log: Any
    slot: int
    start: float


@dataclass
class Outcome:
    finished: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


@contextlib.contextmanager
def seeded_rng(seed: int, index: int):
    """Seed Python's and numpy's global RNGs (the sweeps engine draws from both) for the
    `index`-th choice of a sweep, then restore them: the same sweep seed draws the same runs,
    in a dry run too."""
    import numpy as np

    state_py, state_np = random.getstate(), np.random.get_state()
    s = int.from_bytes(hashlib.sha256(f"{seed}/{index}".encode()).digest()[:4], "little")
    random.seed(s)
    np.random.seed(s)
    try:
        yield
    finally:
        random.setstate(state_py)
        np.random.set_state(state_np)


def override_key(arg: str) -> str:
    return arg.lstrip("+-").split("=", 1)[0]


class LocalSweep:
    """The runs of one sweep file under one root directory.

    Args:
        sweep: the validated sweep file.
        root: where the run dirs and sweep.json go.
        extra: overrides appended to every run's command (e.g. tiny-run settings).
        seed: seeds the random / bayes choices.
        max_runs: cap on the number of runs (default: the file's run_cap; grid: all points).
        threads: OMP_NUM_THREADS of each run, unless the environment sets it (None: leave
            torch's default).
    """

    def __init__(self, sweep: SweepFile, root: Path, extra: list[str] = (), seed: int = 0,
                 max_runs: int | None = None, threads: int | None = None):
        self.sweep, self.root, self.extra, self.seed = sweep, Path(root), list(extra), seed
        self.threads = threads
        self.cap = max_runs if max_runs is not None else sweep.run_cap
        if self.cap is not None and self.cap <= 0:
            raise ConfigError(f"--max-runs must be positive, got {self.cap}")
        if sweep.method != "grid" and self.cap is None:
            raise ConfigError(f"{sweep.path}: a {sweep.method} search never ends by itself; set "
                              "`run_cap: N` in the file or pass --max-runs N")
        self._check_keys()
        self.runs: list[PlannedRun] = self._load_state()
        if sweep.method == "grid":
            self.runs = self._grid()

    # --- planning ---------------------------------------------------------------------
    def _check_keys(self) -> None:
        for arg in self.extra:
            if "=" not in arg:
                raise ConfigError(f"override '{arg}' is not of the form key=value")
        keys = [override_key(a) for a in self.extra]
        for key in [*self.sweep.parameter_names, *keys]:
            if key in RESERVED_KEYS:
                raise ConfigError(f"'{key}' is set by lit_gen.sweep for each run "
                                  f"({self.root}/<run name>); remove it from the sweep")
        # a constant parameter may be overridden (e.g. logger.wandb.enabled=false); a varying
        # one may not: the runs named after its values would all be the same run
        both = sorted(set(keys) & set(self.sweep.varying_names))
        if both:
            raise ConfigError(f"override '{both[0]}' is a varying sweep parameter; drop the "
                              "override or the parameter")

    def _state_header(self) -> dict[str, Any]:
        return {"command": [str(c) for c in self.sweep.spec["command"]], "overrides": self.extra}

    def _load_state(self) -> list[PlannedRun]:
        import json

        path = self.root / STATE_FILE
        if not path.is_file():
            return []
        state = json.loads(path.read_text())
        header = self._state_header()
        for key, value in header.items():
            if state.get(key) != value:
                raise ConfigError(
                    f"{self.root} holds a sweep launched with different {key} "
                    f"({state.get(key)}); its runs would not match these. Pass another --root, "
                    f"or delete {self.root}")
        return [PlannedRun(r["name"], r["params"]) for r in state.get("runs", [])]

    def save_state(self) -> None:
        write_json(self.root / STATE_FILE, {
            "sweep_file": str(self.sweep.path), "method": self.sweep.method,
            "metric": self.sweep.metric, "seed": self.seed, **self._state_header(),
            "runs": [{"name": r.name, "params": r.params} for r in self.runs]})

    def _named(self, params: dict[str, Any]) -> PlannedRun:
        name = run_name(params, self.sweep.varying_names)
        if any(r.name == name and r.params != params for r in self.runs):
            name = f"{name}-{params_hash(params)}"  # two parameter sets, one readable name
        return PlannedRun(name, params)

    def _grid(self) -> list[PlannedRun]:
        next_runs = import_sweeps().next_runs
        self.runs = []
        for proposal in next_runs(self.sweep.spec, [], n=10**7):
            if proposal is None or (self.cap is not None and len(self.runs) >= self.cap):
                break
            self.runs.append(self._named({k: v["value"] for k, v in proposal.config.items()}))
        return self.runs

    def can_propose(self) -> bool:
        return self.sweep.method != "grid" and len(self.runs) < self.cap

    def propose(self, running: set[str] = frozenset(), failed: set[str] = frozenset()) -> PlannedRun:
        """Draw the next random / bayes run (bayes: fitted to the finished runs' metric)."""
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        next_run = import_sweeps().next_run
        history = [self.sweep_run(r, running, failed) for r in self.runs]
        with seeded_rng(self.seed, len(self.runs)), warnings.catch_warnings():
            # the bayes engine's Gaussian-process fit warns on few or flat results
            warnings.simplefilter("ignore", ConvergenceWarning)
            proposal = next_run(self.sweep.spec, history)
        run = self._named({k: v["value"] for k, v in proposal.config.items()})
        self.runs.append(run)
        return run

    def sweep_run(self, run: PlannedRun, running: set[str], failed: set[str]):
        """The run as the sweeps engine sees it: state and summary metrics."""
        sweeps = import_sweeps()
        RunState, SweepRun = sweeps.RunState, sweeps.SweepRun
        metrics = {}
        if run.name in failed:
            state = RunState.failed
        elif run.name in running:
            state = RunState.running
        elif is_finished(self.root / run.name):
            state = RunState.finished
            metrics = {k: v for k, v in read_metrics(self.root / run.name).items()
                       if isinstance(v, int | float) and not isinstance(v, bool)}
        else:
            state = RunState.pending
        return SweepRun(name=run.name, state=state, summary_metrics=metrics,
                        config={k: {"value": v} for k, v in run.params.items()})

    # --- one run ----------------------------------------------------------------------
    def status(self, run: PlannedRun) -> str:
        """finished | running (a live fit holds its lock) | resume (has last.ckpt) |
        restart (left a run dir) | new."""
        d = self.root / run.name
        if is_finished(d):
            return "finished"
        if is_locked(d):  # e.g. left running by a runner killed with -9
            return "running"
        if (d / CHECKPOINTS_DIR / "last.ckpt").is_file() and (d / CONFIG_FILE).is_file():
            return "resume"
        if (d / CONFIG_FILE).is_file():
            return "restart"
        return "new"

    def command(self, run: PlannedRun, status: str) -> list[str]:
        tail = [f"run.dir={self.root / run.name}"] + (["resume=last"] if status == "resume" else [])
        return self.sweep.fit_command(run.params, [*self.extra, *tail])

    def validate(self, run: PlannedRun) -> None:
        """Load the run's config in this process, so a bad parameter fails before any work."""
        argv = self.command(run, "new")[3:]  # after `python -m lit_gen.fit`
        try:
            args, overrides = parse_fit_args(argv)
        except SystemExit:  # argparse already printed why
            raise ConfigError(f"sweep run '{run.name}': bad lit_gen.fit arguments "
                              f"{' '.join(argv)}") from None
        try:
            load(args.config, overrides)
        except ConfigError as err:
            raise ConfigError(f"sweep run '{run.name}': {err}") from None

    def launch(self, run: PlannedRun, slot: int, gpu: str | None) -> Launched:
        status = self.status(run)
        d = self.root / run.name
        if status == "restart":  # a run dir without a checkpoint: keep it, start afresh
            attempts = self.root / ATTEMPTS_DIR
            attempts.mkdir(parents=True, exist_ok=True)
            k = sum(1 for p in attempts.glob(f"{run.name}.*")) + 1
            shutil.move(str(d), str(attempts / f"{run.name}.{k}"))
        d.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k != "LIT_GEN_RUN_DIR"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_ROOT),
                                                          env.get("PYTHONPATH")]))
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        if self.threads is not None:
            # K processes x all cores each oversubscribe the CPU; torch's OpenMP threads then
            # spin against each other (100x slower steps on a busy 2-core machine)
            env.setdefault("OMP_NUM_THREADS", str(self.threads))
        cmd = self.command(run, status)
        log = open(d / LOG_FILE, "a")  # noqa: SIM115 (closed when the process ends)
        log.write(f"$ {shlex.join(cmd)}\n")
        log.flush()
        # its own process group (a Ctrl-C or kill of the runner's group reaches it only
        # through end_children), and on Linux a SIGTERM when the runner dies, even by kill -9
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, preexec_fn=_terminate_with_parent)
        return Launched(proc, log, slot, time.monotonic())

    # --- the whole sweep ----------------------------------------------------------------
    def skip_running(self, run, out: Outcome) -> None:
        """A run a live lit_gen.fit holds (outside this runner): named, counted as failed."""
        print(f"    skipping {run.name}: a live lit_gen.fit holds {self.root / run.name} "
              f"({_describe_lock(self.root / run.name)})", flush=True)
        out.failed.append(run.name)

    def execute(self, slots: list[str | None]) -> Outcome:
        """Run every unfinished run, len(slots) at a time; slot i runs on GPU slots[i]."""
        out = Outcome()
        queue = []
        for run in self.runs[: self.cap]:  # a smaller --max-runs than before: the first ones
            status = self.status(run)
            if status == "finished":
                out.skipped.append(run.name)
            elif status == "running":
                self.skip_running(run, out)
            else:
                self.validate(run)
                queue.append(run)
        self.save_state()
        total = len(self.runs) if self.sweep.method == "grid" else self.cap
        running: dict[str, Launched] = {}
        free = list(range(len(slots)))
        started = len(out.skipped)
        try:
            while True:
                while free:
                    if queue:
                        run = queue.pop(0)
                        # the run may have been finished, or started, by a fit outside this
                        # runner since the queue was made: relaunching a finished run with
                        # resume=last would reopen it and overwrite its done.json
                        now = self.status(run)
                        if now == "finished":
                            out.skipped.append(run.name)
                            started += 1
                            print(f"    skipping {run.name}: finished meanwhile", flush=True)
                            continue
                        if now == "running":
                            self.skip_running(run, out)
                            continue
                    elif self.can_propose():
                        run = self.propose(set(running), set(out.failed))
                        self.validate(run)
                        self.save_state()
                    else:
                        break
                    slot = free.pop(0)
                    started += 1
                    gpu = slots[slot]
                    where = f" on GPU {gpu}" if gpu is not None else ""
                    print(f"[{started}/{total}] {self.status(run)} {run.name}{where}", flush=True)
                    running[run.name] = self.launch(run, slot, gpu)
                if not running:
                    break
                time.sleep(0.2)
                for name, job in list(running.items()):
                    code = job.proc.poll()
                    if code is None:
                        continue
                    job.log.close()
                    del running[name]
                    free.append(job.slot)
                    free.sort()
                    secs = time.monotonic() - job.start
                    if code == 0 and is_finished(self.root / name):
                        out.finished.append(name)
                        print(f"    finished {name} ({secs:.0f} s)", flush=True)
                    else:
                        out.failed.append(name)
                        print(f"    FAILED {name} (exit {code}, {secs:.0f} s): see "
                              f"{self.root / name / LOG_FILE}", flush=True)
        except LitGenError as err:
            # after a bad drawn config the running runs finish
            if running:
                print(f"error: {err}\nwaiting for {len(running)} running runs to finish",
                      file=sys.stderr, flush=True)
            for job in running.values():
                job.proc.wait()
                job.log.close()
            raise
        except BaseException:
            # Ctrl-C, SIGTERM (see main) or a crash of the runner: each run saves a
            # checkpoint at its current step and stops (SIGTERM, lit_gen.run.signals)
            end_children([job.proc for job in running.values()])
            for job in running.values():
                job.log.close()
            raise
        return out


def _terminate_with_parent() -> None:
    """In the child, before exec: ask Linux for a SIGTERM when the runner dies."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
    except (OSError, AttributeError):
        pass  # not Linux: the run lock still keeps a second runner off a live run


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def end_children(procs: list[subprocess.Popen], grace: float = 60.0) -> None:
    """SIGTERM each run's process group, wait up to `grace` seconds for the checkpoints,
    then SIGKILL what is left."""
    import signal

    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _describe_lock(run_dir: Path) -> str:
    info = read_lock(run_dir) or {}
    return f"pid {info.get('pid')} on {info.get('host')}"


@contextlib.contextmanager
def root_lock(root: Path):
    """One lit_gen.sweep per root at a time (two would launch the same runs twice); the lock
    is the run lock's (pid, host and process start time: never taken for stale while its
    runner lives)."""
    with RunLock(root, holder="lit_gen.sweep"):
        yield


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="python -m lit_gen.sweep",
        description="Run a W&B sweep file locally (no server): grid, random or bayes. Extra "
                    "key=value arguments are appended to every run's lit_gen.fit command.")
    parser.add_argument("sweep_file", help="a sweeps/*.yaml file")
    parser.add_argument("--root", default=None,
                        help="directory for the run dirs (default: runs/sweeps/<sweep name>)")
    parser.add_argument("--parallel", type=int, default=None,
                        help="runs at a time (default 1, or one per --gpus entry)")
    parser.add_argument("--gpus", default=None,
                        help="comma-separated GPU ids: one run per GPU (CUDA_VISIBLE_DEVICES)")
    parser.add_argument("--max-runs", type=int, default=None,
                        help="stop after this many runs (default: the file's run_cap; grid: all)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads per run (OMP_NUM_THREADS; default: cores / runs at a "
                             "time when running several, unless OMP_NUM_THREADS is set)")
    parser.add_argument("--seed", type=int, default=0, help="seeds random / bayes choices")
    parser.add_argument("--dry-run", action="store_true", help="list the runs and exit")
    return parser.parse_known_args(argv)


def slots_for(parallel: int | None, gpus: str | None) -> list[str | None]:
    ids: list[str] = []
    if gpus is not None:
        ids = [g.strip() for g in gpus.split(",")]
        if not all(g.isdigit() for g in ids):
            raise ConfigError(f"--gpus takes comma-separated GPU ids such as 0,1; got '{gpus}'")
    n = parallel if parallel is not None else max(1, len(ids))
    if n <= 0:
        raise ConfigError(f"--parallel must be positive, got {n}")
    return [ids[i % len(ids)] if ids else None for i in range(n)]


def dry_run(local: LocalSweep) -> None:
    runs = list(local.runs)
    note = ""
    if local.sweep.method == "random":  # seeded: these are the runs a real launch draws
        while local.can_propose():
            local.validate(local.propose())
        runs = local.runs
    elif local.sweep.method == "bayes" and local.can_propose():
        note = (f"and up to {local.cap - len(runs)} more bayes runs, each chosen from the "
                f"finished runs' '{local.sweep.metric['name']}'")
    print(f"sweep '{local.sweep.name}' ({local.sweep.method}, {len(runs)} runs) -> {local.root}")
    for run in runs:
        status = local.status(run)
        print(f"{status:9s} {run.name}")
        if status != "finished":
            print(f"          python {shlex.join(local.command(run, status)[1:])}")
    if note:
        print(note)


@cli_main
def main(argv: list[str] | None = None) -> int:
    args, extra = parse_args(argv)
    sweep = load_sweep(args.sweep_file)
    slots = slots_for(args.parallel, args.gpus)
    root = Path(args.root) if args.root else Path("runs") / "sweeps" / sweep.name
    threads = args.threads
    if threads is None and len(slots) > 1:
        threads = max(1, (os.cpu_count() or 1) // len(slots))
    if threads is not None and threads <= 0:
        raise ConfigError(f"--threads must be positive, got {threads}")
    local = LocalSweep(sweep, root, extra, seed=args.seed, max_runs=args.max_runs,
                       threads=threads)
    if args.dry_run:
        for run in local.runs:
            local.validate(run)
        dry_run(local)
        return 0
    import signal

    def terminate(signum, frame):  # a SIGTERM to the runner ends its runs cleanly too
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        with root_lock(root):
            out = local.execute(slots)
    except KeyboardInterrupt:
        print(f"interrupted; run the same command again to resume the sweep in {root}",
              file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(f"sweep '{sweep.name}': {len(out.finished)} finished, {len(out.skipped)} already "
          f"finished (skipped), {len(out.failed)} failed -> {root}")
    if out.failed:
        print("failed: " + ", ".join(out.failed), file=sys.stderr)
        return 1
    return 0

