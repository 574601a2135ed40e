"""The aten-op counter of the speed benchmark (lit_gen.bench.speed.opcount)."""

from __future__ import annotations

import pytest
import torch

from lit_gen.bench.speed import opcount


def test_op_counter_counts_each_dispatched_op():
    x, w = torch.ones(3, 2), torch.ones(2, 4)
    with opcount.OpCounter() as m:
        y = (x @ w).relu_()
        y.mul(2.0).sum()
    assert m.counts["aten.mm.default"] == 1
    assert m.counts["aten.relu_.default"] == 1
    assert m.counts["aten.mul.Tensor"] == 1
    assert m.counts["aten.sum.default"] == 1
    assert "aten.add.Tensor" not in m.counts
    # outside the mode nothing is counted
    x + x
    assert "aten.add.Tensor" not in m.counts


@pytest.mark.slow
def test_per_step_counts_of_the_three_sides(capsys):
    counts = opcount.per_step("gan_grid2d", short=2, long=6)
    totals = {side: sum(c.values()) for side, c in counts.items()}
    # the same nets, losses and optimizers: a GAN step is a few hundred ops on every side
    assert all(200 < t < 500 for t in totals.values()), totals
    # two Adam steps per batch: 3 linear layers x (weight, bias) per net, one addcdiv_ each
    for side in opcount.SIDES:
        assert counts[side]["aten.addcdiv_.default"] == pytest.approx(12), side
    # lit_gen's finite-loss check (torch.isfinite on each loss: ne, abs, eq, mul) is its own
    assert counts["lit_gen"]["aten.ne.Scalar"] >= 2 and "aten.ne.Scalar" not in counts["bare"]
    assert opcount.main(["gan_grid2d", "--short", "2", "--long", "4"]) == 0
    assert "lit_gen  aten ops per step" in capsys.readouterr().out
    assert opcount.main(["vae_digits", "--long", "500"]) == 2
    assert "training batches per epoch" in capsys.readouterr().err
