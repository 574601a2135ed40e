"""`python -m lit_gen.bench [MODE] ...`: benchmark commands.

    python -m lit_gen.bench RUNS_DIR_OR_SWEEP [--group-by model,dataset --over seed] [--out F]
    python -m lit_gen.bench table ...   (the same; `table` is the default mode)

A mode is a module of this package with `main(argv) -> int` (wrapped in `@cli_main`),
registered by name in MODES; a new mode is one line here plus its own module, imported only
when used. `table` reads run records (`records`); `speed` times lit_gen against a plain
PyTorch loop; `reference` scores real data and uniform noise under a table's protocol;
`figures` draws a gallery and metric curves from run dirs.
"""

from __future__ import annotations

import importlib
import sys

MODES = {
    "table": "lit_gen.bench.table",  # finished runs -> markdown + CSV table (the default)
    "speed": "lit_gen.bench.speed",  # lit_gen vs plain PyTorch throughput, FID timing, memory
    "reference": "lit_gen.bench.reference",  # real-vs-real floor and uniform noise of a protocol
    "figures": "lit_gen.bench.figures",  # sample gallery and metric-vs-epoch curves of runs
}
DEFAULT_MODE = "table"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in MODES:
        mode, rest = argv[0], argv[1:]
    else:
        mode, rest = DEFAULT_MODE, argv
    return importlib.import_module(MODES[mode]).main(rest)

