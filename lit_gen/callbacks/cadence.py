"""When a run writes its periodic files (last.ckpt, sample grids): by wall time, so that
writing them costs a bounded share of any run, whatever its epoch length."""

from __future__ import annotations

import time
from collections.abc import Callable

#: the largest share of the run's wall time the periodic writes of one kind may take
WRITE_BUDGET = 0.02


class WallClockCadence:
    """Due at an epoch end once `interval` seconds have passed since the last write ended,
    where interval = max(min_interval_s, last write's cost / WRITE_BUDGET).

    Between two writes the run trains at least 1 / WRITE_BUDGET (50) times as long as one
    write takes, so the writes cost at most 2 % of the run (each kind: checkpoints, grids),
    for epochs of any length: short epochs write every few epochs, epochs longer than the
    interval write at each epoch end.

    Args:
        min_interval_s: seconds between writes when they are cheap (`run.write_every_s`).
        clock: seconds (tests pass a fake one).
    """

    def __init__(self, min_interval_s: float, clock: Callable[[], float] = time.perf_counter):
        self.min_interval_s = float(min_interval_s)
        self.clock = clock
        self.cost_s = 0.0
        self.last_end = clock()

    @property
    def interval_s(self) -> float:
        return max(self.min_interval_s, self.cost_s / WRITE_BUDGET)

    def start(self) -> None:
        """The run (or a resumed one) starts: the first write is due one interval later."""
        self.last_end = self.clock()

    def due(self) -> bool:
        return self.clock() - self.last_end >= self.interval_s

    def run(self, write: Callable[[], object]) -> None:
        """Write now, and time it (the cost sets the next interval)."""
        t0 = self.clock()
        write()
        self.last_end = self.clock()
        self.cost_s = self.last_end - t0
