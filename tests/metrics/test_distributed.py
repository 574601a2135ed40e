"""Metrics under DDP (2 CPU processes, gloo) equal a single-process run on the same samples."""

from __future__ import annotations

import pytest
import torch
import torch.multiprocessing as mp

from lit_gen.metrics.distributed import gather_and_compute, share
from tests.metrics.testutil import ddp_compute, ddp_worker, fixed_samples


def test_share_blocks_concatenate_to_range():
    for n in (0, 1, 7, 2500):
        for world in (1, 2, 3, 8):
            blocks = [share(n, r, world) for r in range(world)]
            assert [i for b in blocks for i in b] == list(range(n))


@pytest.mark.slow
def test_two_process_gloo_metrics_equal_single_process(tmp_path):
    single = gather_and_compute(fixed_samples(), lambda inputs: ddp_compute(inputs, str(tmp_path / "c1")))
    assert set(single) == {"modes_captured", "high_quality_pct", "mode_reverse_kl", "isc_mean",
                           "isc_std", "fid", "kid_mean", "kid_std", "precision", "recall", "f_score",
                           "density", "coverage", "ct_score", "nn_distance_ratio", "fd_inf",
                           "fid_n24", "fid_n30", "fid_n40", "fid_n60", "fid_n120"}
    assert single["modes_captured"] == 8 and 0 < single["high_quality_pct"] < 100
    mp.spawn(ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path / "c2"), str(tmp_path)),
             nprocs=2, join=True)
    rank0 = torch.load(tmp_path / "rank0.pt")
    rank1 = torch.load(tmp_path / "rank1.pt")
    assert rank0 == rank1  # every rank logs the same numbers
    assert rank0.keys() == single.keys()
    for key, value in single.items():
        assert rank0[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
