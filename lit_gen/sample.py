"""`python -m lit_gen.sample --ckpt PATH --n N --out FILE`: samples from a checkpoint alone.

`--out` ending in .npz writes array `x` (N, *shape) in data space ([-1, 1] for images) and,
for conditional models, `y` (N,); ending in .png writes a grid (a scatter for 2D data).
Give --out twice for both.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lit_gen.callbacks import save_grid
from lit_gen.errors import ConfigError, cli_main
from lit_gen.models.base import Grid
from lit_gen.run.checkpoint import load_model


def parse_labels(text: str | None, per_class: int | None, num_classes: int, n: int | None):
    import torch

    if text is not None and per_class is not None:
        raise ConfigError("give --labels or --per-class, not both")
    if text is not None:
        try:
            labels = [int(t) for t in text.split(",") if t.strip()]
        except ValueError:
            raise ConfigError(f"--labels must be comma-separated integers, got '{text}'") from None
        bad = [lab for lab in labels if not 0 <= lab < num_classes]
        if bad:
            raise ConfigError(f"--labels: {bad[0]} is not a class of this model (0..{num_classes - 1})")
        reps = -(-(n or len(labels)) // len(labels))
        return torch.tensor(labels).repeat(reps)[: n or len(labels)]
    if per_class is not None:
        return torch.arange(num_classes).repeat_interleave(per_class)
    return None


def generate(model, n: int, labels, batch_size: int, seed: int):
    """n samples (and their labels) in batches of at most batch_size, reproducible by seed."""
    import torch

    torch.manual_seed(seed)
    xs, ys = [], []
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        lab = labels[start:start + m] if labels is not None else (
            model.sample_labels(m) if model.conditional else None)
        xs.append(model.sample(m, lab).float().cpu())
        if lab is not None:
            ys.append(lab.cpu())
    return torch.cat(xs), (torch.cat(ys) if ys else None)


@cli_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lit_gen.sample", description=__doc__)
    parser.add_argument("--ckpt", required=True, help="a lit_gen checkpoint (.ckpt)")
    parser.add_argument("--n", type=int, default=None, help="number of samples (default 64)")
    parser.add_argument("--out", action="append", required=True,
                        help="output .npz and/or .png (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=500, help="samples per forward pass")
    parser.add_argument("--labels", default=None, help="conditional models: e.g. 0,1,2")
    parser.add_argument("--per-class", type=int, default=None,
                        help="conditional models: N samples of every class")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--member", type=int, default=None,
                        help="ensemble runs (config seeds): the member to sample (default 0)")
    parser.add_argument("--nrow", type=int, default=None, help="images per grid row")
    args = parser.parse_args(argv)

    import numpy as np


    outs = [Path(o) for o in args.out]
    for o in outs:
        if o.suffix not in (".npz", ".png"):
            raise ConfigError(f"--out {o}: use a .npz or .png file name")
    if args.n is not None and args.n <= 0 or args.batch_size <= 0:
        raise ConfigError("--n and --batch-size must be positive")
    model = load_model(args.ckpt, args.device, member=args.member)
    if (args.labels or args.per_class) and not model.conditional:
        raise ConfigError("--labels / --per-class need a conditional model; this one is not")
    labels = parse_labels(args.labels, args.per_class, model.num_classes, args.n)
    n = args.n or (len(labels) if labels is not None else 64)
    x, y = generate(model, n, labels, args.batch_size, args.seed)
    for o in outs:
        o.parent.mkdir(parents=True, exist_ok=True)
        if o.suffix == ".npz":
            arrays = {"x": x.numpy()}
            if y is not None:
                arrays["y"] = y.numpy()
            np.savez(o, **arrays)
        else:
            nrow = args.nrow or (args.per_class if args.per_class else 8)
            save_grid(Grid(x, nrow), o)
        print(f"wrote {o} ({n} samples)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
