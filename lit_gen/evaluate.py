"""`python -m lit_gen.evaluate --ckpt PATH [--n N] [--metrics fid,isc,kid,prc,dc,memorization,
fd_inf,recon_fid,toy,likelihood] [--out FILE] [--samples FILE.npz|.npy [--convert-uint8]]
[--latent-sampler prior|gmm|two_stage] [metrics.key=value ...]`

Evaluates a checkpoint with the same code and JSON as training (`metrics.json`: name ->
number, plus the `protocol` object). The data config comes from the checkpoint; the metric
settings too, unless overridden (`--n`, `--metrics`, or `metrics.*` / `data.*` dotlist pairs
such as `metrics.feature_extractor=classifier metrics.classifier_ckpt=PATH data.root=DIR`).
With `--samples FILE.npz` (array `x` as written by `lit_gen.sample`) the image and toy
metrics score those samples instead of drawing new ones; likelihood metrics always use the
checkpoint's model on `metrics.likelihood_split`. Sample files are checked first: an
unreadable, truncated or empty file, a wrong shape or dtype, non-finite values or values
outside [-1, 1] for images stop the command with exit code 2 and one line saying which.
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
from lit_gen.metrics.latent_samplers import prepare_latent_sampler
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
    parser.add_argument("--convert-uint8", action="store_true",
                        help="--samples holds uint8 images (0..255): map them to [-1, 1]")
    parser.add_argument("--latent-sampler", default=None,
                        help="autoencoders: prior, gmm or two_stage (metrics.latent_sampler); "
                             "a fitted sampler is stored next to the checkpoint")
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
    if args.latent_sampler is not None:
        cfg.metrics.latent_sampler = args.latent_sampler
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


#: sample dtypes evaluate accepts (uint8 only for images, and only with --convert-uint8)
FLOAT_KINDS = ("float16", "float32", "float64")
RANGE_SLACK = 1e-3  # float rounding at the ends of [-1, 1]


def read_sample_array(p: Path):
    """The array in an .npz (array `x`) or .npy file, as numpy, or a DataError saying why not."""
    import zipfile

    import numpy as np

    fix = "pass an .npz written by `python -m lit_gen.sample --out FILE.npz` (array x) or an .npy"
    if not p.is_file():
        raise DataError(f"--samples: file not found: {p}")
    try:
        loaded = np.load(p, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                if "x" not in loaded.files:
                    raise DataError(f"--samples: {p} has no array 'x' (it holds "
                                    f"{', '.join(loaded.files) or 'nothing'}); {fix}")
                return loaded["x"]
        if not isinstance(loaded, np.ndarray):
            raise DataError(f"--samples: {p} holds no array; {fix}")
        return loaded
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise DataError(f"--samples: cannot read {p}, unreadable or truncated "
                        f"({type(err).__name__}); {fix}") from None


def load_samples(path: str, shape: tuple[int, ...], image: bool = True, convert_uint8: bool = False):
    """Samples from a file, checked against the protocol: (N, *shape), N > 0, finite, float
    (uint8 images only with `convert_uint8`: x / 127.5 - 1), and in [-1, 1] for images."""
    import numpy as np
    import torch

    p = Path(path)
    x = read_sample_array(p)
    if x.ndim == 0 or x.shape[0] == 0 or x.size == 0:
        raise DataError(f"--samples: {p} holds no samples (array of shape {tuple(x.shape)})")
    if tuple(x.shape[1:]) != tuple(shape):
        raise DataError(f"--samples: {p} holds samples of shape {tuple(x.shape[1:])}, but the "
                        f"checkpoint's data has shape {tuple(shape)}")
    dtype = str(x.dtype)
    if dtype == "uint8" and image:
        if not convert_uint8:
            raise DataError(f"--samples: {p} holds uint8 images (0..255) but the protocol scores "
                            "float images in [-1, 1]; pass --convert-uint8 to map x / 127.5 - 1")
        return torch.from_numpy(x.astype(np.float32) / 127.5 - 1.0)
    if dtype not in FLOAT_KINDS:
        raise DataError(f"--samples: {p} holds {dtype} values; samples must be float "
                        f"({', '.join(FLOAT_KINDS)}){' or uint8 with --convert-uint8' if image else ''}")
    x = x.astype(np.float32)
    finite = np.isfinite(x)
    if not finite.all():
        bad = int(x.shape[0] - finite.reshape(len(x), -1).all(1).sum())
        raise DataError(f"--samples: {p} has non-finite values (NaN or inf) in {bad} of "
                        f"{len(x)} samples; fix or drop those samples")
    if image:
        lo, hi = float(x.min()), float(x.max())
        if lo < -1 - RANGE_SLACK or hi > 1 + RANGE_SLACK:
            raise DataError(f"--samples: {p} has values in [{lo:.4g}, {hi:.4g}], outside the "
                            "protocol's [-1, 1] for images; rescale them (uint8: --convert-uint8)")
    return torch.from_numpy(x)


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
        kind = getattr(DATASETS.get(cfg.data.name, "data.name"), "kind", "image")
        samples = load_samples(args.samples, model.data_shape, image=kind == "image",
                               convert_uint8=args.convert_uint8)
        if args.n is not None:
            samples = samples[: args.n]
    sampler, sampler_protocol = None, None
    if cfg.metrics.latent_sampler != "prior" and samples is None:
        sampler, sampler_protocol = prepare_latent_sampler(
            model, cfg.metrics.latent_sampler, args.ckpt, dm, file=cfg.metrics.latent_sampler_file,
            seed=cfg.seed)
    evaluator = Evaluator(cfg.metrics, dm, seed=cfg.seed, latent_sampler=sampler,
                          latent_sampler_protocol=sampler_protocol)
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
