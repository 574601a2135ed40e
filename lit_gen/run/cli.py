"""The fit command line, shared by every command that starts or plans fit runs (fit, sweep,
bench records): `--config FILE ... key=value ...` -> a validated config."""

from __future__ import annotations

import argparse

from omegaconf import DictConfig

from lit_gen.validation import load


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog="python -m lit_gen.fit",
        description="Train one experiment. Overrides: key=value or --key=value (OmegaConf dotlist).")
    parser.add_argument("--config", action="append", default=[],
                        help="experiment yaml; several merge left to right")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved config and exit")
    return parser.parse_known_args(argv)


def config_from_argv(argv: list[str] | None) -> tuple[argparse.Namespace, DictConfig]:
    """The parsed flags and the validated config of a fit command line."""
    args, overrides = parse_args(argv)
    return args, load(args.config, overrides)
