"""The sweep runner under faults: its runs end with it, and a live run is never resumed twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from lit_gen.run.lock import LOCK_FILE, RunLock
from lit_gen.sweep.file import load_sweep
from lit_gen.sweep.runner import LocalSweep, end_children
from tests.conftest import ROOT

TRAP = r"""
import signal, sys, time, pathlib
marker = pathlib.Path(sys.argv[1])
def on_term(signum, frame):
    marker.write_text(str(signum))
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
pathlib.Path(sys.argv[2]).write_text("ready")
time.sleep(120)
"""

# a stand-in runner: launches one child exactly as LocalSweep.launch does, then sleeps
RUNNER = r"""
import subprocess, sys, time
from lit_gen.sweep.runner import _terminate_with_parent
subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2], sys.argv[3]],
                 start_new_session=True, preexec_fn=_terminate_with_parent)
time.sleep(120)
"""


def wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_runs_get_sigterm_when_the_runner_is_killed_9(tmp_path):
    """Before: a runner killed with -9 left its fit running. Now: the run gets SIGTERM (it
    saves its checkpoint and stops), even though the runner could not act."""
    marker, ready = tmp_path / "terminated", tmp_path / "ready"
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, TRAP, str(marker), str(ready)],
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        wait_for(ready)
        runner.send_signal(signal.SIGKILL)
        runner.wait()
        wait_for(marker, timeout=30)
        assert marker.read_text() == str(int(signal.SIGTERM))
    finally:
        runner.kill()


def test_end_children_terminates_each_process_group(tmp_path):
    ready = [tmp_path / f"ready{i}" for i in range(2)]
    marks = [tmp_path / f"term{i}" for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-c", TRAP, str(m), str(r)], start_new_session=True)
             for m, r in zip(marks, ready, strict=True)]
    for r in ready:
        wait_for(r)
    end_children(procs, grace=30)
    assert all(p.returncode == 0 for p in procs)
    assert [m.read_text() for m in marks] == [str(int(signal.SIGTERM))] * 2


def test_a_run_dir_held_by_a_live_fit_is_not_relaunched(tmp_path):
    """Before: the next runner took the dead runner's lock as stale and resumed the dir the
    orphaned fit still wrote. Now: a run whose dir a live process holds is `running`."""
    spec = {"name": "t", "method": "grid", "command": ["${env}", "python", "-m", "lit_gen.fit",
                                                     "${args}"],
            "parameters": {"config": {"value": "conf/experiment/gan_ring2d.yaml"},
                           "seed": {"values": [0, 1]}}}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    local = LocalSweep(load_sweep(path), tmp_path / "root")
    held, free = local.runs
    with RunLock(tmp_path / "root" / held.name):
        assert local.status(held) == "running"
        assert local.status(free) == "new"
    assert not (tmp_path / "root" / held.name / LOCK_FILE).exists()
    assert local.status(held) == "new"
