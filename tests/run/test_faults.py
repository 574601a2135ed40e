"""Fault injection: kills, signals, hostile files, changed configs, two writers, odd data.

Each case states what lit_gen did before issue 11 in its docstring; the assertions are what
it does now. The reference is one uninterrupted tiny run (3 epochs x 6 batches of
gan_ring2d, deterministic); interrupted runs must end with exactly its weights, optimizer
states, metrics.json and metrics.csv.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from lit_gen.errors import CheckpointError, ConfigError, DataError
from lit_gen.run.checkpoint import read_checkpoint
from lit_gen.run.lock import LOCK_FILE, RunLock, RunLockedError, holder_info
from lit_gen.run.signals import RESUME_KEY, Preempted
from tests.conftest import ROOT, assert_same_training, fit, tiny_overrides

GAN = ROOT / "conf" / "experiment" / "gan_ring2d.yaml"
EPOCHS = 3
# last.ckpt at every epoch end (the default cadence is wall-clock: see run.write_every_s)
EXTRA = ["trainer.deterministic=true", "trainer.log_every_n_steps=2", "run.write_every_s=0"]
STEPS = EPOCHS * 6  # generator steps of the reference run


def overrides(run_dir: Path, epochs: int = EPOCHS) -> list[str]:
    return tiny_overrides(run_dir, epochs=epochs) + EXTRA


def fit_argv(run_dir: Path, *extra: str, epochs: int = EPOCHS) -> list[str]:
    return ["--config", str(GAN), *overrides(run_dir, epochs), *extra]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("faults") / "reference"
    fit([GAN], overrides(run_dir))
    return run_dir


def final_state(run_dir: Path) -> dict:
    ckpt = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    return {"state_dict": ckpt["state_dict"], "optimizers": ckpt["optimizer_states"],
            # the counters; the stored run config differs by `resume=last` alone
            "lit_gen": {k: v for k, v in ckpt["lit_gen"].items() if k != "run_config"},
            "epoch": ckpt["epoch"],
            "global_step": ckpt["global_step"]}


def assert_same_run(a: Path, b: Path) -> None:
    """Identical weights, optimizer states, counters, metrics.json and metrics.csv."""
    sa, sb = final_state(a), final_state(b)
    assert sa["lit_gen"] == sb["lit_gen"] and sa["lit_gen"]["g_steps"] == STEPS
    # Lightning's `epoch` field says whether the final last.ckpt came from the last epoch's
    # end or from the end of training, which the wall-clock write cadence decides
    assert sa["global_step"] == sb["global_step"]
    assert sa["state_dict"].keys() == sb["state_dict"].keys()
    for k, v in sa["state_dict"].items():
        assert torch.equal(v, sb["state_dict"][k]), k
    for oa, ob in zip(sa["optimizers"], sb["optimizers"], strict=True):
        assert oa["param_groups"] == ob["param_groups"]
        for pid, state in oa["state"].items():
            for key, value in state.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(ob["state"][pid][key]))
    assert json.loads((a / "metrics.json").read_text()) == json.loads((b / "metrics.json").read_text())
    assert (a / "metrics.csv").read_text() == (b / "metrics.csv").read_text()
    assert (b / "done.json").is_file()


# --- subprocess runs that pause at a chosen moment, so a signal lands there -------------------
PAUSING_FIT = r"""
import sys, time, pathlib
import lightning as L
import torch
import lit_gen.fit as fit_mod
import lit_gen.io

ready, go, at_step, in_save = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "save"

def wait():
    ready.write_text("ready")
    for _ in range(1200):
        if go.exists():
            return
        time.sleep(0.05)

class Pause(L.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if not in_save and pl_module.g_steps == at_step:
            wait()

if in_save:  # stop in the middle of writing the `at_step`-th checkpoint
    real, calls = torch.save, [0]
    def slow_save(obj, f, *args, **kwargs):
        real(obj, f, *args, **kwargs)
        calls[0] += 1
        if calls[0] == at_step:
            data = pathlib.Path(f).read_bytes()
            pathlib.Path(f).write_bytes(data[: len(data) // 2])  # half written
            wait()
    lit_gen.io.torch.save = slow_save

original = fit_mod.build_callbacks
fit_mod.build_callbacks = lambda cfg, d: original(cfg, d) + [Pause()]
sys.exit(fit_mod.main(sys.argv[5:]))
"""


def start_pausing_fit(tmp_path: Path, run_dir: Path, at: int, in_save: bool = False,
                      env: dict | None = None) -> tuple[subprocess.Popen, Path, Path]:
    ready, go = tmp_path / f"ready-{at}", tmp_path / f"go-{at}"
    proc = subprocess.Popen(
        [sys.executable, "-c", PAUSING_FIT, str(ready), str(go), str(at),
         "save" if in_save else "step", *fit_argv(run_dir)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    while not ready.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before pausing:\n{proc.stdout.read()[-3000:]}")
        assert time.monotonic() < deadline, "the run never reached its pause"
        time.sleep(0.05)
    return proc, ready, go


@pytest.mark.slow
def test_kill9_during_checkpoint_write_with_tmpdir_elsewhere(reference, tmp_path):
    """Before: with TMPDIR on another filesystem Lightning staged last.ckpt there and copied
    it over; a kill -9 during the copy left a 0-byte last.ckpt (resume: EOFError traceback)
    and the staged files in TMPDIR. Now: the old last.ckpt stays whole, TMPDIR stays empty,
    the half-written temporary file is removed on resume, and the resumed run ends equal to
    the uninterrupted one."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the test's tmp dir")
    tmpdir = Path(__import__("tempfile").mkdtemp(dir=shm, prefix="lit_gen-tmpdir-"))
    run_dir = tmp_path / "run"
    try:
        # the 2nd checkpoint write (end of epoch 1) stops half-way and is killed
        proc, _, _ = start_pausing_fit(tmp_path, run_dir, at=2, in_save=True,
                                       env={"TMPDIR": str(tmpdir)})
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert list(tmpdir.iterdir()) == []
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    ckpts = run_dir / "checkpoints"
    leftovers = [p.name for p in ckpts.iterdir() if p.name != "last.ckpt"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".last.ckpt.")  # the torn write
    assert read_checkpoint(ckpts / "last.ckpt")["lit_gen"]["g_steps"] == 6  # epoch 0, whole
    fit([GAN], overrides(run_dir) + ["resume=last"])
    assert sorted(p.name for p in ckpts.iterdir()) == ["last.ckpt"]
    assert_same_run(reference, run_dir)


@pytest.mark.slow
def test_kill9_at_a_random_step_then_resume(reference, tmp_path):
    """Before: a resumed run kept the metrics.csv rows the killed run had logged after its
    last checkpoint, and logged them again. Now: metrics.csv resumes at the checkpoint's
    step, and the run ends equal to the uninterrupted one."""
    at = random.Random().randrange(7, STEPS)  # after the first checkpoint
    run_dir = tmp_path / "run"
    proc, _, _ = start_pausing_fit(tmp_path, run_dir, at=at)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (run_dir / "done.json").exists()
    fit([GAN], overrides(run_dir) + ["resume=last"])
    assert_same_run(reference, run_dir), f"killed at generator step {at}"


@pytest.mark.slow
def test_sigterm_saves_at_the_step_and_resumes_bit_identically(reference, tmp_path):
    """Before: SIGTERM (a pre-emption) exited 0, with no checkpoint at the signal and
    done.json missing or not. Now: exit 143, last.ckpt at that very step (mid-epoch), no
    done.json, and `resume=last` ends bit-identical to the uninterrupted run."""
    run_dir = tmp_path / "run"
    proc, _, go = start_pausing_fit(tmp_path, run_dir, at=9)  # epoch 1, 4 batches done
    proc.send_signal(signal.SIGTERM)
    go.write_text("go")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, out[-3000:]
    assert "SIGTERM" in out and "resume=last" in out
    # the full checkpoint is asked for: no Lightning line that reads like an unsafe load
    assert "weights_only" not in out, out[-3000:]
    assert not (run_dir / "done.json").exists()
    ckpt = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert ckpt["lit_gen"]["g_steps"] == 10 and ckpt[RESUME_KEY]["batches_done"] == 4
    fit([GAN], overrides(run_dir) + ["resume=last"])
    assert_same_run(reference, run_dir)


class SignalAt(L.Callback):
    """Sends this process `signum` at the start of the generator step `at`."""

    def __init__(self, at: int, signum: int):
        self.at, self.signum = at, signum

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if pl_module.g_steps == self.at:
            os.kill(os.getpid(), self.signum)


def fit_signalled(monkeypatch, run_dir: Path, at: int, signum: int, *extra: str) -> int:
    """lit_gen.fit's main in this process, sent `signum` at generator step `at`; its exit code."""
    import lit_gen.fit as fit_mod

    original = fit_mod.build_callbacks
    monkeypatch.setattr(fit_mod, "build_callbacks",
                        lambda cfg, d: original(cfg, d) + [SignalAt(at, signum)])
    try:
        return fit_mod.main(fit_argv(run_dir, *extra))
    finally:
        monkeypatch.setattr(fit_mod, "build_callbacks", original)


def test_sigusr1_in_process_then_resume(reference, tmp_path, monkeypatch):
    """SLURM's pre-emption warning, SIGUSR1, at the last batch of an epoch: exit code 138
    from the command's main, and the resumed run equals the uninterrupted one."""
    run_dir = tmp_path / "run"
    assert fit_signalled(monkeypatch, run_dir, 11, signal.SIGUSR1) == 128 + signal.SIGUSR1
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL  # handlers given back
    assert read_checkpoint(run_dir / "checkpoints" / "last.ckpt")["lit_gen"]["g_steps"] == 12
    fit([GAN], overrides(run_dir) + ["resume=last"])
    assert_same_run(reference, run_dir)


ENSEMBLE = ["seeds=[1,2]", "metrics.names=[toy]", "metrics.toy_samples=200",
            "model.penalties=[{name: gp, weight: 1.0}]"]  # GP: per-member draws too


def sigterm_ensemble_at(monkeypatch, run_dir: Path, at: int) -> dict:
    """Train a 2-member ensemble until SIGTERM at generator step `at`; its last.ckpt."""
    assert fit_signalled(monkeypatch, run_dir, at, signal.SIGTERM, *ENSEMBLE) == 128 + signal.SIGTERM
    return read_checkpoint(run_dir / "checkpoints" / "last.ckpt")


def test_an_ensemble_stopped_mid_epoch_resumes_bit_identically(tmp_path, monkeypatch, capfd):
    """Before: a mid-epoch checkpoint held the global RNG states but not an ensemble's own
    noise streams, which EpochSeeding seeds at an epoch's start only (a mid-epoch resume
    skips that hook): the rest of the resumed epoch drew its latents and penalty points
    from streams seeded afresh, and a 2-member ensemble ended with other weights (a toy
    table run resumed twice ended at 25 modes / 95.1 % for seed 0 where the uninterrupted
    run has 20 / 93.2 %). Now the streams are saved and restored, and the resumed run
    equals the uninterrupted one; a checkpoint without them still resumes, and says so."""
    reference = fit([GAN], overrides(tmp_path / "reference") + ENSEMBLE)
    run_dir = tmp_path / "run"
    ckpt = sigterm_ensemble_at(monkeypatch, run_dir, at=9)  # epoch 1, 4 batches done
    state = ckpt[RESUME_KEY]
    assert state["batches_done"] == 4 and len(state["member_rngs"]) == 2
    assert not torch.equal(state["member_rngs"][0], state["member_rngs"][1])
    fit([GAN], overrides(run_dir) + ENSEMBLE + ["resume=last"])
    assert_same_training(reference, run_dir)
    assert json.loads((reference / "metrics.json").read_text())["members"] == \
        json.loads((run_dir / "metrics.json").read_text())["members"]

    # a mid-epoch checkpoint written before the streams were saved: sound, not identical
    old_dir = tmp_path / "old"
    ckpt = sigterm_ensemble_at(monkeypatch, old_dir, at=9)
    del ckpt[RESUME_KEY]["member_rngs"]
    torch.save(ckpt, old_dir / "checkpoints" / "last.ckpt")
    capfd.readouterr()
    fit([GAN], overrides(old_dir) + ENSEMBLE + ["resume=last"])
    assert "predates saving an ensemble's noise streams" in capfd.readouterr().err
    old = read_checkpoint(old_dir / "checkpoints" / "last.ckpt")
    assert old["lit_gen"]["g_steps"] == STEPS
    ref = read_checkpoint(reference / "checkpoints" / "last.ckpt")["state_dict"]
    assert not torch.equal(old["state_dict"]["generator.net.0.weight"],
                           ref["generator.net.0.weight"])


# --- hostile files ---------------------------------------------------------------------------
class Payload:
    """Unpickling this runs `touch marker` (a real __reduce__ payload)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_refused_by_every_loader(reference, tmp_path, monkeypatch, capsys):
    """Before: every loader used weights_only=False, so the payload ran its command through
    resume=PATH, resume=last, lit_gen.sample, lit_gen.evaluate and metrics.classifier_ckpt.
    Now: each refuses the file (exit 2, naming what it asked for); the command never runs."""
    from lit_gen import evaluate, sample
    from lit_gen import fit as fit_mod
    from lit_gen.run.checkpoint import RunCheckpointIO

    marker = tmp_path / "MARKER"
    evil = {"lit_gen": {"model_class": "AdversarialModule"}, "hyper_parameters": Payload(marker),
            "state_dict": {}, "format": 1}
    run_dir = tmp_path / "evil-run"
    (run_dir / "checkpoints").mkdir(parents=True)
    shutil.copy(reference / "config.yaml", run_dir / "config.yaml")
    path = run_dir / "checkpoints" / "last.ckpt"
    torch.save(evil, path)
    classifier = tmp_path / "classifiers" / "evil.pt"
    classifier.parent.mkdir()
    torch.save(evil, classifier)
    digits = ROOT / "conf" / "experiment" / "dcgan_digits.yaml"
    clf_run = tmp_path / "clf-run"
    monkeypatch.chdir(tmp_path)
    entry_points = {
        "resume=PATH": lambda: fit_mod.main(fit_argv(tmp_path / "other", f"resume={path}")),
        "resume=last": lambda: fit_mod.main(fit_argv(run_dir, "resume=last")),
        "sample --ckpt": lambda: sample.main(["--ckpt", str(path), "--out", str(tmp_path / "x.npz")]),
        "evaluate --ckpt": lambda: evaluate.main(["--ckpt", str(path), "--metrics", "toy"]),
        "metrics.classifier_ckpt": lambda: fit_mod.main(
            ["--config", str(digits), *tiny_overrides(clf_run), "metrics.names=[fid]",
             "metrics.feature_extractor=classifier", f"metrics.classifier_ckpt={classifier}"]),
    }
    for name, call in entry_points.items():
        assert call() == 2, name
        err = capsys.readouterr().err
        assert "refused to load" in err and "posix.system" in err, (name, err)
        assert not marker.exists(), name
    with pytest.raises(CheckpointError, match="refused"):
        RunCheckpointIO().load_checkpoint(path)  # the loader Lightning itself uses
    assert not (clf_run / "config.yaml").exists()  # refused before anything was written
    assert (run_dir / "config.yaml").read_bytes() == (reference / "config.yaml").read_bytes()
    # the payload is real: an unsafe load runs it
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_corrupt_and_bit_flipped_checkpoints_leave_a_finished_run_alone(reference, tmp_path):
    """Before: resume=last with a corrupt last.ckpt deleted the finished run's done.json
    (and rewrote config.yaml); a bit-flipped checkpoint gave a MemoryError traceback. Now:
    a one-line CheckpointError, and the run dir is unchanged."""
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    good = last.read_bytes()
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    flipped = bytearray(good)
    rng = np.random.default_rng(0)
    for i in rng.integers(len(good) // 4, len(good), 64):
        flipped[i] ^= 0xFF
    for damaged in (b"", good[: len(good) // 2], bytes(flipped)):
        last.write_bytes(damaged)
        with pytest.raises(CheckpointError, match="cannot read checkpoint"):
            fit([GAN], overrides(run_dir) + ["resume=last"])
        assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


# --- resume integrity ------------------------------------------------------------------------
@pytest.mark.parametrize("change", [
    "model.g_optim.lr=0.002", "model.d_optim.betas=[0.0,0.9]", "data.batch_size=8",
    "seed=1", "model.latent_dim=3", "model.loss=hinge", "model.generator.hidden=[16,16]",
    "data.n_samples=700", "model.n_critic=2", "trainer.limit_train_batches=5",
])
def test_resume_refuses_a_change_that_defines_the_run(reference, change):
    """Before: a changed batch size was accepted silently, a changed lr ignored (while
    config.yaml recorded it), a changed model ended in a traceback after done.json was
    deleted and config.yaml rewritten. Now: refused with the diff, nothing touched."""
    before = {p.name: p.stat().st_mtime_ns for p in reference.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError, match=f"define the run.*{change.split('=')[0]}"):
        fit([GAN], overrides(reference, EPOCHS + 1) + ["resume=last", change])
    assert {p.name: p.stat().st_mtime_ns for p in reference.rglob("*") if p.is_file()} == before


def test_resume_refuses_fewer_epochs(reference):
    with pytest.raises(ConfigError, match="max_epochs may only grow"):
        fit([GAN], overrides(reference, EPOCHS - 1) + ["resume=last"])


def test_allowed_changes_are_applied_and_recorded(tmp_path):
    """resume_overrides=allow: a new learning rate reaches the optimizers (on a cosine
    schedule: its base rate, the current rate rescaled with it), and resumes.json records
    each change, the forced ones named. A resumable key (log interval) needs no flag."""
    run_dir = tmp_path / "run"
    schedule = ["model.g_optim.scheduler=exponential", "model.g_optim.scheduler_args={gamma: 0.5}",
                "model.ema.decay=0.9", "run.monitor=val/d_real"]
    fit([GAN], overrides(run_dir, 1) + schedule)
    old = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")["optimizer_states"][0]
    old_lr, old_base = old["param_groups"][0]["lr"], old["param_groups"][0]["initial_lr"]
    assert old_lr == pytest.approx(0.5e-3) and old_base == pytest.approx(1e-3)
    with pytest.raises(ConfigError, match="model.g_optim.lr"):
        fit([GAN], overrides(run_dir, 2) + schedule + ["resume=last", "model.g_optim.lr=0.002"])

    class ReadLr(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.lrs = [g["lr"] for g in trainer.optimizers[0].param_groups]
            self.base = trainer.lr_scheduler_configs[0].scheduler.base_lrs

    import lit_gen.fit as fit_mod

    probe = ReadLr()
    original = fit_mod.build_callbacks
    fit_mod.build_callbacks = lambda cfg, d: original(cfg, d) + [probe]
    try:
        fit([GAN], overrides(run_dir, 2) + schedule + [
            "resume=last", "resume_overrides=allow", "model.g_optim.lr=0.002",
            "trainer.log_every_n_steps=3"])
    finally:
        fit_mod.build_callbacks = original
    assert probe.base == [pytest.approx(0.002)]
    # the schedule keeps its place (one decay of 0.5 so far) on the new base rate
    assert probe.lrs[0] == pytest.approx(0.002 * 0.5, rel=1e-6)
    new = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert new["optimizer_states"][0]["param_groups"][0]["initial_lr"] == pytest.approx(0.002)
    assert new["optimizer_states"][1]["param_groups"][0]["lr"] == pytest.approx(1e-3)  # D as it was
    assert new["lit_gen"]["run_config"]["model"]["g_optim"]["lr"] == pytest.approx(0.002)
    assert new["hyper_parameters"]["g_optim"]["lr"] == pytest.approx(0.002)
    resumes = json.loads((run_dir / "resumes.json").read_text())["resumes"]
    assert len(resumes) == 1
    changes = resumes[0]["changes"]
    assert changes["model.g_optim.lr"] == {"old": pytest.approx(1e-3), "new": pytest.approx(0.002)}
    assert changes["trainer.log_every_n_steps"] == {"old": 2, "new": 3}
    assert resumes[0]["forced"] == ["model.g_optim.lr"]


# --- one writer per run dir ------------------------------------------------------------------
def test_two_writers_are_refused(reference, tmp_path):
    """Before: two `resume=last` in one run dir both trained (duplicated CSV rows). Now:
    the second is refused while the first holds the lock; nothing changes."""
    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    before = {p.name: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    with RunLock(run_dir):  # a live writer: this very process
        with pytest.raises(RunLockedError, match=f"pid {os.getpid()}"):
            fit([GAN], overrides(run_dir, EPOCHS + 1) + ["resume=last"])
        after = {p.name: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
        assert after.pop(LOCK_FILE) and after == before
    assert not (run_dir / LOCK_FILE).exists()


def test_stale_lock_detection(tmp_path):
    """Taken over: a dead pid, a reused pid (same pid, other start time), a lock from before
    a reboot. Refused: a live holder, a holder on another host (cannot be checked)."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    me = holder_info()
    stale = [dict(me, pid=dead.pid, start_ticks=None), dict(me, start_ticks=me["start_ticks"] - 1),
             dict(me, boot_id="another-boot")]
    for info in stale:
        d = tmp_path / f"stale{stale.index(info)}"
        d.mkdir()
        (d / LOCK_FILE).write_text(json.dumps(info))
        with RunLock(d):
            assert json.loads((d / LOCK_FILE).read_text())["start_ticks"] == me["start_ticks"]
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for info, match in ((holder_info(live.pid), f"pid {live.pid}"),
                            (dict(me, host=socket.gethostname() + "-other"), "another host|this host")):
            d = tmp_path / f"held{match[:4]}"
            d.mkdir()
            (d / LOCK_FILE).write_text(json.dumps(info))
            with pytest.raises(RunLockedError, match=match):
                RunLock(d).acquire()
    finally:
        live.kill()
        live.wait()


# --- data, run dirs and command lines --------------------------------------------------------
def test_16bit_png_reads_with_its_real_range(tmp_path):
    """Before: a 16-bit grey PNG loaded as all white. Now: scaled by 65535, equal to the
    8-bit version of the same image up to 8-bit rounding."""
    from PIL import Image

    from lit_gen.data import build_datamodule
    from lit_gen.validation import load

    ramp = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    for sub, image in (("a16", Image.fromarray(ramp)),
                       ("b8", Image.fromarray((ramp // 257).astype(np.uint8)))):
        (tmp_path / sub).mkdir()
        image.save(tmp_path / sub / "img.png")
    assert Image.open(tmp_path / "a16" / "img.png").mode.startswith("I")
    xs = []
    for sub in ("a16", "b8"):
        for channels in (1, 3):
            cfg = load([], ["data.name=image_folder", f"data.root={tmp_path / sub}",
                            "data.image_size=32", f"data.channels={channels}",
                            "data.val_fraction=0"])
            dm = build_datamodule(cfg.data)
            dm.setup()
            assert dm.x_train.shape == (1, channels, 32, 32)
            xs.append(dm.x_train[0, 0])
    expected = torch.from_numpy(ramp.astype(np.float64) / 65535 * 2 - 1).float()
    for x in xs:
        assert torch.allclose(x, expected, atol=1 / 127.5 + 1e-6)
    assert float(xs[0].mean()) == pytest.approx(0.0, abs=0.01)  # not all white


def test_dataset_smaller_than_a_batch_is_refused_before_anything_is_written(tmp_path):
    """Before: an image folder with one image ended in a BatchNorm traceback and left a
    config.yaml behind. Now: a DataError up front; the run dir is not even created."""
    from PIL import Image

    (tmp_path / "img").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "img" / "a.png")
    dcgan = ROOT / "conf" / "experiment" / "dcgan_digits.yaml"
    run_dir = tmp_path / "run"
    common = tiny_overrides(run_dir) + ["data.name=image_folder", f"data.root={tmp_path / 'img'}",
                                        "data.image_size=16", "data.limit=null"]
    with pytest.raises(DataError, match=r"1 example\(s\), fewer than one batch.*batch norm"):
        fit([dcgan], common)
    with pytest.raises(DataError, match="batch norm, which needs at least 2"):
        fit([dcgan], common + ["data.batch_size=1"])
    assert not run_dir.exists()


def test_unusable_run_dirs_and_outputs_are_refused_up_front(reference, tmp_path, capsys):
    """Before: a read-only or over-long run.dir gave a traceback; `sample --out` in a
    read-only folder failed only after sampling; a folder with last.ckpt but no config.yaml
    was overwritten. Now: exit 2 with one line, before any work."""
    from lit_gen import fit as fit_mod
    from lit_gen import sample

    read_only = Path("/sys/lit_gen-test")  # refused even to root
    for run_dir in (tmp_path / ("x" * 300), read_only / "run"):
        assert fit_mod.main(fit_argv(run_dir)) == 2
        assert "cannot be written" in capsys.readouterr().err
    orphan = tmp_path / "orphan"
    (orphan / "checkpoints").mkdir(parents=True)
    shutil.copy(reference / "checkpoints" / "last.ckpt", orphan / "checkpoints" / "last.ckpt")
    assert fit_mod.main(fit_argv(orphan)) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert sorted(p.name for p in orphan.rglob("*")) == ["checkpoints", "last.ckpt"]
    start = time.perf_counter()
    ckpt = reference / "checkpoints" / "last.ckpt"
    assert sample.main(["--ckpt", str(ckpt), "--n", "100000", "--out",
                        str(read_only / "x.npz")]) == 2
    assert "cannot write there" in capsys.readouterr().err
    assert time.perf_counter() - start < 5  # refused before sampling 100000 points


@pytest.mark.parametrize("bad", ["logger.wandb.group=`x`", "logger.wandb.entity=@home",
                                 "run.dir=@home"])
def test_overrides_yaml_cannot_scan_exit_2(bad, tmp_path, capsys):
    """Before: a yaml ScannerError traceback (fit and `sweep --dry-run`). Now: exit 2 with
    how to quote the value."""
    from lit_gen import fit as fit_mod
    from lit_gen.sweep.runner import main as sweep_main

    assert fit_mod.main(["--config", str(GAN), bad, "--print-config"]) == 2
    assert "YAML cannot read the value" in capsys.readouterr().err
    if bad.startswith("run.dir"):
        return  # a key lit_gen.sweep sets itself
    sweep = ROOT / "sweeps" / sorted(p.name for p in (ROOT / "sweeps").glob("*.yaml"))[0]
    assert sweep_main([str(sweep), "--root", str(tmp_path / "s"), "--dry-run", bad]) == 2
    assert "YAML cannot read the value" in capsys.readouterr().err


def test_run_files_are_world_readable(reference):
    """Before: metrics.json and config.yaml were written 0600 (mkstemp's mode)."""
    umask = os.umask(0)
    os.umask(umask)
    for name in ("config.yaml", "metrics.json", "done.json", "environment.json",
                 "checkpoints/last.ckpt"):
        assert (reference / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


def test_old_checkpoints_load_weights_only(reference):
    """What Lightning stores (loops, callback states, optimizer and scheduler states,
    hyper-parameters) loads with weights_only=True and no allow-list."""
    ckpt = torch.load(reference / "checkpoints" / "last.ckpt", weights_only=True)
    assert {"loops", "callbacks", "optimizer_states", "hyper_parameters", "lit_gen"} <= set(ckpt)


def test_preempted_exit_code_and_message():
    stop = Preempted(signal.SIGTERM, 10, Path("r/checkpoints/last.ckpt"))
    assert stop.code == 143 and "SIGTERM" in str(stop) and "resume=last" in str(stop)
