"""Periodic writes (last.ckpt, sample grids) on a wall-clock cadence that bounds their cost."""

from __future__ import annotations

import math

import pytest
from lightning.pytorch.utilities.exceptions import SIGTERMException

from lit_gen.callbacks.cadence import WRITE_BUDGET, WallClockCadence
from lit_gen.run.checkpoint import LastCheckpoint


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_due_after_the_minimum_interval_when_writes_are_cheap():
    clock = FakeClock()
    c = WallClockCadence(60.0, clock)
    clock.t = 59.9
    assert not c.due()
    clock.t = 60.0
    assert c.due()
    c.run(lambda: setattr(clock, "t", clock.t + 0.5))  # a 0.5 s write
    assert c.cost_s == pytest.approx(0.5) and c.last_end == pytest.approx(60.5)
    assert c.interval_s == pytest.approx(60.0)  # 0.5 / 0.02 = 25 s < 60 s


def test_a_slow_write_stretches_the_interval_to_fifty_times_its_cost():
    clock = FakeClock()
    c = WallClockCadence(0.0, clock)
    clock.t = 1.0
    c.run(lambda: setattr(clock, "t", clock.t + 3.0))  # 3 s
    assert c.interval_s == pytest.approx(150.0)
    clock.t = 4.0 + 149.0
    assert not c.due()
    clock.t = 4.0 + 150.0
    assert c.due()


@pytest.mark.parametrize(("epoch_s", "write_s"), [(0.01, 0.05), (0.3, 0.2), (7.0, 1.0), (500.0, 2.0)])
def test_writes_cost_at_most_the_budget_for_any_epoch_length(epoch_s, write_s):
    """Simulated runs of 2 h: epochs of any length, writes of a fixed cost at epoch ends."""
    clock = FakeClock()
    c = WallClockCadence(0.0, clock)
    writing = 0.0
    while clock.t < 7200.0:
        clock.t += epoch_s
        if c.due():
            c.run(lambda: setattr(clock, "t", clock.t + write_s))
            writing += write_s
    # the first write comes after one epoch (nothing measured yet), then one at the first
    # epoch end at least write_s / budget after the last write ended
    assert writing / clock.t <= WRITE_BUDGET + write_s / 7200.0
    period = math.ceil(write_s / WRITE_BUDGET / epoch_s - 1e-9) * epoch_s + write_s
    expected_writes = 7200.0 / period
    assert writing / write_s == pytest.approx(expected_writes, rel=0.1, abs=1)


def test_last_checkpoint_saves_on_signals_not_on_errors(tmp_path, monkeypatch):
    cb = LastCheckpoint(str(tmp_path), 60.0)
    saved = []
    monkeypatch.setattr(cb, "_save", lambda trainer: saved.append(trainer))
    monkeypatch.setattr(cb, "_should_skip_saving_checkpoint", lambda trainer: False)
    cb.on_exception("trainer", None, ValueError("a bug"))
    assert saved == []
    cb.on_exception("trainer", None, SIGTERMException())
    cb.on_exception("trainer", None, KeyboardInterrupt())
    assert saved == ["trainer", "trainer"]


@pytest.mark.slow
def test_cadence_of_a_real_run(tmp_path):
    """sample_every_n_epochs=1: a grid at every epoch end; write_every_s=0: the first
    periodic writes at the first epoch end; a long interval: only the final files. Each
    leaves a last.ckpt to resume from."""
    from lit_gen.run.checkpoint import read_checkpoint
    from tests.conftest import ROOT, fit, tiny_overrides

    exp = [ROOT / "conf" / "experiment" / "gan_ring2d.yaml"]
    every = fit(exp, tiny_overrides(tmp_path / "a", epochs=3) + ["run.sample_every_n_epochs=1"])
    assert sorted(p.name for p in (every / "samples").iterdir()) == [
        "samples_epoch0001.png", "samples_epoch0002.png", "samples_epoch0003.png",
        "samples_final.png"]
    soon = fit(exp, tiny_overrides(tmp_path / "s", epochs=2) + ["run.write_every_s=0"])
    assert "samples_epoch0001.png" in {p.name for p in (soon / "samples").iterdir()}
    rare = fit(exp, tiny_overrides(tmp_path / "b", epochs=3) + ["run.write_every_s=3600"])
    assert sorted(p.name for p in (rare / "samples").iterdir()) == ["samples_final.png"]
    ends = [read_checkpoint(r / "checkpoints" / "last.ckpt")["global_step"] for r in (every, rare)]
    assert ends[0] == ends[1] > 0  # the end of training, whatever the cadence
    resumed = fit(exp, tiny_overrides(tmp_path / "b", epochs=4) + ["resume=last"])
    assert read_checkpoint(resumed / "checkpoints" / "last.ckpt")["global_step"] == 4 * ends[1] // 3
