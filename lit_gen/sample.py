"""`python -m lit_gen.sample --ckpt PATH --n N --out FILE`: samples from a checkpoint alone.

`--latent-sampler gmm|two_stage` (autoencoders) decodes codes drawn from an ex-post
density of the training codes instead of the N(0, I) prior (docs/evaluation.md).
`--out` ending in .npz writes array `x` (N, *shape) in data space ([-1, 1] for images) and,
for conditional models, `y` (N,); ending in .png writes a grid (a scatter for 2D data).
Give --out twice for both.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from lit_gen.callbacks import save_grid
from lit_gen.data import build_datamodule
from lit_gen.errors import ConfigError, cli_main
from lit_gen.io import atomic_path
from lit_gen.metrics.latent_samplers import LATENT_SAMPLERS, prepare_latent_sampler, sample_with
from lit_gen.models.base import Grid
from lit_gen.run.checkpoint import load_model, stored_config


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


def check_writable_file(path: Path) -> None:
    """A ConfigError unless `path` can be written (its folder created, a file made there)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as err:
        raise ConfigError(f"--out {path}: cannot write there ({err.strerror or err}); choose "
                          "a writable folder") from None


def generate(model, n: int, labels, batch_size: int, seed: int, latent_sampler=None):
    """n samples (and their labels) in batches of at most batch_size, reproducible by seed;
    decoded from `latent_sampler`'s codes when given (autoencoders), else model.sample."""
    import torch

    torch.manual_seed(seed)
    xs, ys = [], []
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        lab = labels[start:start + m] if labels is not None else (
            model.sample_labels(m) if model.conditional else None)
        if latent_sampler is None:
            xs.append(model.sample(m, lab).float().cpu())
        else:
            xs.append(sample_with(model, latent_sampler, m, lab).float().cpu())
        if lab is not None:
            ys.append(lab.cpu())
    return torch.cat(xs), (torch.cat(ys) if ys else None)


def fitted_latent_sampler(model, ckpt: str, name: str):
    """The ex-post sampler `name` of this checkpoint (read, or fitted on its training split)."""
    LATENT_SAMPLERS.get(name, "--latent-sampler")
    if not callable(getattr(model, "encode_mean", None)):
        raise ConfigError(f"--latent-sampler {name} needs an autoencoder; this checkpoint's model "
                          "has no encoder (use --latent-sampler prior)")
    cfg = stored_config(ckpt)
    dm = build_datamodule(cfg.data, seed=cfg.seed)
    sampler, proto = prepare_latent_sampler(model, name, ckpt, dm,
                                            file=cfg.metrics.get("latent_sampler_file"), seed=cfg.seed)
    print(f"latent sampler {name}: {proto.get('latent_sampler_file', 'not stored')}")
    return sampler


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
    parser.add_argument("--latent-sampler", default="prior",
                        help="autoencoders: prior (N(0, I)), gmm or two_stage, fitted once on "
                             "the training codes and stored next to the checkpoint "
                             "(<ckpt>.<sampler>.pt)")
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
    for o in outs:  # before the work: a read-only --out is found now, not after sampling
        check_writable_file(o)
    model = load_model(args.ckpt, args.device, member=args.member)
    if (args.labels or args.per_class) and not model.conditional:
        raise ConfigError("--labels / --per-class need a conditional model; this one is not")
    labels = parse_labels(args.labels, args.per_class, model.num_classes, args.n)
    n = args.n or (len(labels) if labels is not None else 64)
    sampler = None
    if args.latent_sampler != "prior":
        sampler = fitted_latent_sampler(model, args.ckpt, args.latent_sampler)
    x, y = generate(model, n, labels, args.batch_size, args.seed, sampler)
    for o in outs:
        if o.suffix == ".npz":
            arrays = {"x": x.numpy()}
            if y is not None:
                arrays["y"] = y.numpy()
            with atomic_path(o) as tmp, open(tmp, "wb") as f:
                np.savez(f, **arrays)
        else:
            nrow = args.nrow or (args.per_class if args.per_class else 8)
            save_grid(Grid(x, nrow), o)
        print(f"wrote {o} ({n} samples)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
