"""aten ops dispatched per training step, plain loop vs bare LightningModule vs lit_gen.

    python -m lit_gen.bench.speed.opcount gan_grid2d

Runs each side's in-epoch loop (`plain.run_plain`, `lit.run_bare`, `lit.run_lit`) for
`short` and `long` steps under a `TorchDispatchMode` that counts every aten op, and prints
(long - short) / (long - short steps) per side and the ops where lit_gen and bare Lightning
differ. Differencing cancels set-up, the first epoch's work and the end of the fit. A count,
not a timing: it shows how much tensor work a side adds per step, whatever the machine's
load (docs/performance.md, "Quiet machine").
"""

from __future__ import annotations

import argparse
import collections
from dataclasses import replace

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from lit_gen.errors import ConfigError, cli_main

SIDES = ("plain", "bare", "lit_gen")


class OpCounter(TorchDispatchMode):
    """Counts aten ops by name while active."""

    def __init__(self):
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.counts[str(func)] += 1
        return func(*args, **(kwargs or {}))


def side_counts(name: str, steps: int, warmup: int = 2) -> dict[str, collections.Counter]:
    """aten op counts of each side's in-epoch loop of `warmup + steps` batches."""
    from lit_gen.bench.speed.lit import load_data, run_bare, run_lit
    from lit_gen.bench.speed.plain import run_plain
    from lit_gen.bench.speed.process import in_epoch_config
    from lit_gen.bench.speed.settings import Settings, TrainCase

    cpu = torch.device("cpu")
    cfg = in_epoch_config(name, 0, cpu, warmup + steps)
    dm = load_data(cfg)
    batches = len(dm.x_train) // cfg.data.batch_size
    if warmup + steps > batches:
        raise ConfigError(f"opcount: {name} has {batches} training batches per epoch, fewer "
                          f"than {warmup} warm-up + {steps} steps; pass a smaller --long")
    s = replace(Settings(warmup=warmup, steps=steps, repeats=1), batch_size=cfg.data.batch_size)
    case = TrainCase(cfg.model.name, int(dm.info().shape[-1]), name, "dataloader")
    runs = {"plain": lambda: run_plain(cfg, s, case, cpu, dm),
            "bare": lambda: run_bare(cfg, s, case, cpu, dm),
            "lit_gen": lambda: run_lit(cfg, s, cpu)}
    out = {}
    for side in SIDES:
        with OpCounter() as m:
            runs[side]()
        out[side] = m.counts
    return out


def per_step(name: str, short: int = 10, long: int = 40) -> dict[str, dict[str, float]]:
    """{side: {op: count per step}} from the difference of a long and a short loop."""
    a, b = side_counts(name, short), side_counts(name, long)
    return {side: {op: n / (long - short) for op, n in (b[side] - a[side]).items()}
            for side in SIDES}


@cli_main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lit_gen.bench.speed.opcount",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("experiment", nargs="?", default="gan_grid2d")
    p.add_argument("--short", type=int, default=10)
    p.add_argument("--long", type=int, default=40)
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    counts = per_step(a.experiment, a.short, a.long)
    for side in SIDES:
        print(f"{side:8s} aten ops per step: {sum(counts[side].values()):.1f}")
    lit, bare = counts["lit_gen"], counts["bare"]
    print("ops where lit_gen and bare Lightning differ (per step: lit_gen, bare):")
    for op in sorted(set(lit) | set(bare), key=lambda o: bare.get(o, 0) - lit.get(o, 0)):
        if abs(lit.get(op, 0) - bare.get(op, 0)) > 1e-9:
            print(f"  {op:45s} {lit.get(op, 0):7.2f} {bare.get(op, 0):7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
