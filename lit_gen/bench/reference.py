"""`python -m lit_gen.bench reference --config EXP.yaml [key=value ...] --out FILE.json`

The reference rows of a benchmark table, scored under the same protocol as its runs (the
experiment's `metrics` section: names, number of samples, real split, feature extractor):

- `real data`: n images of the other split (the test split when the protocol compares
  against train, else train) scored as if they were samples, with n = metrics.num_samples
  (capped at that split's size): the floor a perfect generator reaches at this n, through
  this extractor (FID's bias at finite n is not zero);
- `uniform noise`: n images of i.i.d. uniform [-1, 1] pixels (seeded): the score of a
  generator that learnt nothing.

`python -m lit_gen.bench RUNS --reference FILE.json` prints them under the model rows, with
each model's ratio to both. The file is deterministic (same data, seed and extractor: the
same bytes), so it is committed next to the table.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import torch

from lit_gen import validation
from lit_gen.bench.records import NOISE, REAL, REFERENCE_FORMAT
from lit_gen.data import build_datamodule
from lit_gen.errors import ConfigError, DataError, cli_main
from lit_gen.io import atomic_write_text, jsonable
from lit_gen.metrics.evaluator import Evaluator, mixed_seed


def other_split(dm, real_split: str) -> str:
    """The split a real-vs-real comparison scores against `real_split`."""
    if real_split != "test":
        try:
            dm.split("test")
            return "test"
        except DataError:
            return "val" if real_split == "train" else "train"
    return "train"


def uniform_noise(n: int, shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """(n, *shape) i.i.d. uniform [-1, 1], from a generator seeded by `seed`."""
    gen = torch.Generator().manual_seed(mixed_seed(seed, "uniform noise"))
    return torch.rand((n, *shape), generator=gen) * 2.0 - 1.0


def reference_rows(cfg) -> list[dict]:
    """[{name, split, metrics, protocol}] for the real-vs-real floor and uniform noise."""
    m = cfg.metrics
    if not m.names:
        raise ConfigError("reference: the config names no metrics; set metrics.names "
                          "(e.g. metrics.names=[fid,kid,isc,prc])")
    dm = build_datamodule(cfg.data, seed=cfg.seed)
    dm.setup()
    if dm.info().kind != "image":
        raise ConfigError(f"reference: data '{cfg.data.name}' is not an image set; reference "
                          "rows are for image metrics")
    evaluator = Evaluator(m, dm, seed=cfg.seed)
    unknown = sorted(set(m.names) - set(evaluator.image_names))
    if unknown:
        raise ConfigError(f"reference: only image metrics apply ({', '.join(evaluator.image_names)}"
                          f"), not {', '.join(unknown)}; drop them from metrics.names")
    split = other_split(dm, m.real_split)
    x, _ = dm.split(split)
    real = x[: m.num_samples]
    rows = []
    for name, samples, what in (
            (REAL, real, f"{len(real)} images of the {split} split vs the {m.real_split} split"),
            (NOISE, uniform_noise(len(real), tuple(x.shape[1:]), cfg.seed),
             f"{len(real)} images of uniform [-1, 1] pixels vs the {m.real_split} split")):
        values, protocol = evaluator.compute({"samples": samples})
        if "fid" in values:  # also under fid_n<N>: the key of FID at this n in runs that
            # record `fd_inf` (fid_n<N> at several N), so a table can divide at equal n
            values.setdefault(f"fid_n{protocol['fid_n']}", values["fid"])
        rows.append({"name": name, "what": what, "metrics": values, "protocol": protocol})
    return rows


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m lit_gen.bench reference", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", required=True,
                        help="experiment yaml whose data and metrics sections set the protocol")
    parser.add_argument("--out", required=True, help="JSON file to write")
    return parser.parse_known_args(argv)


@cli_main
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args, overrides = parse_args(argv)
    cfg = validation.load(args.config, overrides)
    payload = {"format": REFERENCE_FORMAT, "dataset": cfg.data.name,
               "command": "python -m lit_gen.bench reference " + shlex.join(argv),
               "rows": reference_rows(cfg)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, json.dumps(jsonable(payload), indent=2, sort_keys=True) + "\n")
    for row in payload["rows"]:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(row["metrics"].items())
                          if isinstance(v, int | float))
        print(f"{row['name']} ({row['what']}): {shown}")
    print(f"wrote {out}")
    return 0
