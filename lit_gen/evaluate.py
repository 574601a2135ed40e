"""`python -m lit_gen.evaluate --ckpt PATH [--n N] [--metrics fid,isc,kid,prc,toy,likelihood]
[--out FILE] [--samples FILE.npz] [metrics.key=value ...]`

Evaluates a checkpoint with the same code and JSON as training (`metrics.json`: name ->
number, plus the `protocol` object). The data config comes from the checkpoint; the metric
settings too, unless overridden (`--n`, `--metrics`, or `metrics.*` / `data.*` dotlist pairs
such as `metrics.feature_extractor=classifier metrics.classifier_ckpt=PATH data.root=DIR`).
With `--samples FILE.npz` (array `x` as written by `lit_gen.sample`) the image and toy
metrics score those samples instead of drawing new ones; likelihood metrics always use the
checkpoint's model on `metrics.likelihood_split`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from lit_gen.config import normalize_overrides
from lit_gen.data import DATASETS, build_datamodule
from lit_gen.errors import ConfigError, DataError, cli_main
from lit_gen.io import atomic_write_text, jsonable
from lit_gen.metrics.evaluator import Evaluator
from lit_gen.metrics.likelihood import supports_likelihood
from lit_gen.run.checkpoint import load_model, stored_config
from lit_gen.validation import validate_metrics_config


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m lit_gen.evaluate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="a lit_gen checkpoint (.ckpt)")
    parser.add_argument("--n", type=int, default=None,
                        help="generated samples (metrics.num_samples, and metrics.toy_samples)")
    parser.add_argument("--metrics", default=None,
                        help="comma-separated: fid,isc,kid,prc (images), toy, likelihood "
                             "(default: the checkpoint's metrics.names, else fid,isc / toy)")
    parser.add_argument("--out", default=None, help="JSON file (default: stdout)")
    parser.add_argument("--samples", default=None, help="score this .npz (array x) instead of sampling")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--member", type=int, default=None,
                        help="ensemble runs (config seeds): the member to evaluate (default 0)")
    return parser.parse_known_args(argv)


def evaluation_config(ckpt: str, args, overrides: list[str], model):
    """The checkpoint's config with the command line's metric choices, validated."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException


    cfg = stored_config(ckpt)
    dotlist = normalize_overrides(overrides)
    bad = [d for d in dotlist if not d.startswith(("metrics.", "data."))]
    if bad:
        raise ConfigError(f"only metrics.* and data.* overrides apply to evaluate, got '{bad[0]}'")
    if args.n is not None:
        if args.n <= 0:
            raise ConfigError("--n must be positive")
        dotlist += [f"metrics.num_samples={args.n}", f"metrics.toy_samples={args.n}"]
    try:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(dotlist))
    except OmegaConfBaseException as err:
        raise ConfigError(f"invalid override: {str(err).splitlines()[0]}") from None
    if args.metrics is not None:
        cfg.metrics.names = [m.strip() for m in args.metrics.split(",") if m.strip()]
    if not cfg.metrics.names:
        kind = getattr(DATASETS.get(cfg.data.name, "data.name"), "kind", "image")
        cfg.metrics.names = ["toy"] if kind == "toy" else ["fid", "isc"]
        if supports_likelihood(model):
            cfg.metrics.names.append("likelihood")
    cfg.run.monitor = None  # no checkpoints here
    if args.samples is not None and cfg.metrics.names == ["likelihood"]:
        print("note: --samples is not used by likelihood metrics", file=sys.stderr)
    validate_metrics_config(cfg)
    return cfg


def load_samples(path: str, shape: tuple[int, ...]):
    import numpy as np
    import torch

    p = Path(path)
    if not p.is_file():
        raise DataError(f"--samples: file not found: {p}")
    try:
        with np.load(p) as data:
            x = torch.from_numpy(np.asarray(data["x"], dtype=np.float32))
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"--samples: cannot read array 'x' from {p} ({type(err).__name__}); pass "
                        "an .npz written by `python -m lit_gen.sample --out FILE.npz`") from None
    if tuple(x.shape[1:]) != tuple(shape):
        raise DataError(f"--samples: {p} holds samples of shape {tuple(x.shape[1:])}, but the "
                        f"checkpoint's data has shape {tuple(shape)}")
    return x


@cli_main
def main(argv: list[str] | None = None) -> int:
    args, overrides = parse_args(argv)


    start = time.time()
    model = load_model(args.ckpt, args.device, member=args.member)
    cfg = evaluation_config(args.ckpt, args, overrides, model)
    dm = build_datamodule(cfg.data, seed=cfg.seed)
    dm.setup()
    samples = None
    if args.samples is not None:
        samples = load_samples(args.samples, model.data_shape)
        if args.n is not None:
            samples = samples[: args.n]
    evaluator = Evaluator(cfg.metrics, dm, seed=cfg.seed)
    evaluator.prepare()
    values, protocol = evaluator.evaluate_model(model, tag=("evaluate", args.seed), samples=samples)
    protocol.update(checkpoint=str(args.ckpt), g_step=model.g_steps,
                    ema=model.generator_ema is not None,
                    samples=str(args.samples) if args.samples else None,
                    seed=args.seed if args.samples is None else None)
    text = json.dumps(jsonable({**values, "protocol": protocol}), indent=2, sort_keys=True) + "\n"
    if args.out:

        atomic_write_text(Path(args.out), text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    print(f"evaluated in {time.time() - start:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
