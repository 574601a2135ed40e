"""The thread policy of a run and the per-step CUDA query on CPU-only machines."""

from __future__ import annotations

import os
import timeit

import pytest
import torch
from omegaconf import OmegaConf

from lit_gen.run import threads


@pytest.mark.parametrize(("parameters", "cpus", "expected"), [
    (20_000, 2, 1), (50_000_000, 2, 1),  # 1-2 cpus: always one thread
    (20_000, 16, 1), (1_999_999, 16, 1),  # small models: one thread anywhere
    (6_000_000, 16, 3), (100_000_000, 16, 15),  # one per 2 M parameters, never every cpu
    (6_000_000, 3, 2), (6_000_000, 1, 1)])
def test_policy_threads(parameters, cpus, expected):
    assert threads.policy_threads(parameters, cpus) == expected


def test_explicit_choices_win_in_order():
    big = 100_000_000
    assert threads.choose_threads(3, big, 16, {"OMP_NUM_THREADS": "5"}) == (3, "run.threads")
    assert threads.choose_threads(None, big, 16, {"OMP_NUM_THREADS": "5"}) == (5, "OMP_NUM_THREADS")
    assert threads.choose_threads(None, big, 16, {}) == (15, "policy")
    for junk in ("", "0", "four"):
        assert threads.choose_threads(None, big, 16, {"OMP_NUM_THREADS": junk}) == (15, "policy")


def test_apply_sets_torch_threads_and_records_the_choice():
    before = torch.get_num_threads()
    model = torch.nn.Linear(10, 10)  # 110 parameters
    try:
        cfg = OmegaConf.create({"run": {"threads": 2}})
        rec = threads.apply_thread_policy(cfg, model)
        assert torch.get_num_threads() == 2
        assert rec["intra_op_threads"] == 2 and rec["source"] == "run.threads"
        assert rec["model_parameters"] == 110 and rec["cpus"] == threads.available_cpus()
    finally:
        torch.set_num_threads(before)


def test_cuda_query_is_removed_only_without_a_gpu(monkeypatch):
    monkeypatch.delenv("PYTORCH_NVML_BASED_CUDA_CHECK", raising=False)
    assert threads.skip_cuda_query_without_gpu() is False  # nothing to remove
    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    if torch.cuda.device_count() > 0:
        assert threads.skip_cuda_query_without_gpu() is False
        assert os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] == "1"
        return
    query = lambda: torch.accelerator.current_accelerator(check_available=True)  # noqa: E731
    slow = min(timeit.repeat(query, number=200, repeat=3))
    assert threads.skip_cuda_query_without_gpu() is True
    assert "PYTORCH_NVML_BASED_CUDA_CHECK" not in os.environ and not torch.cuda.is_available()
    fast = min(timeit.repeat(query, number=200, repeat=3))
    assert fast < slow  # the Adam step's availability check no longer asks NVML


def test_fit_records_the_thread_choice(tmp_path):
    import json

    from tests.conftest import ROOT, fit, tiny_overrides

    before = torch.get_num_threads()
    try:
        run = fit([ROOT / "conf" / "experiment" / "gan_ring2d.yaml"],
                  tiny_overrides(tmp_path / "r") + ["run.threads=1"])
    finally:
        torch.set_num_threads(before)
    rec = json.loads((run / "environment.json").read_text())["threads"]
    assert rec["intra_op_threads"] == 1 and rec["source"] == "run.threads"
    assert rec["model_parameters"] > 0 and isinstance(rec["cuda_query_per_step"], bool)
