"""Metrics under DDP: every rank holds its share of the samples; they are gathered, rank 0
computes, and the result is broadcast so that every rank logs the same numbers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist

Tensor = torch.Tensor


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def share(n: int, rank: int, world: int) -> range:
    """The contiguous block of indices 0..n-1 that `rank` of `world` produces; in rank order
    the blocks concatenate to range(n), so gathering keeps a world-size-free order."""
    return range(rank * n // world, (rank + 1) * n // world)


def all_gather_cat(t: Tensor) -> Tensor:
    """Concatenate every rank's tensor along dim 0 in rank order (lengths may differ)."""
    rank, world = rank_and_world()
    if world == 1:
        return t
    t = t.contiguous()
    n = torch.tensor([len(t)], device=t.device)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    dist.all_gather(sizes, n)
    longest = int(max(s.item() for s in sizes))
    padded = torch.zeros((longest, *t.shape[1:]), dtype=t.dtype, device=t.device)
    padded[: len(t)] = t
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(s.item())] for p, s in zip(parts, sizes)])


def gather_and_compute(local: dict[str, Tensor], compute: Callable[[dict[str, Tensor]], Any]) -> Any:
    """Gather each entry of `local` from all ranks, run `compute` on rank 0, broadcast its
    result to every rank. An exception on rank 0 is re-raised on every rank (no hang)."""
    rank, world = rank_and_world()
    if world == 1:
        return compute(local)
    gathered = {k: all_gather_cat(v) for k, v in local.items()}
    box: list[Any] = [None]
    if rank == 0:
        try:
            box[0] = ("ok", compute(gathered))
        except Exception as err:  # noqa: BLE001 - re-raised below on every rank
            box[0] = ("error", err)
    dist.broadcast_object_list(box, src=0)
    status, payload = box[0]
    if status == "error":
        raise payload
    return payload
