"""`python benchmarks/speed.py [--quick] [--out FILE]`: the speed benchmark from a checkout.

Same as `python -m lit_gen.bench.speed` (see its --help and docs/performance.md).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lit_gen.bench.speed import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
