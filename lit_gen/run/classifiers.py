"""The default experiment runs by itself: a missing classifier file at the default path of a
bundled dataset (runs/classifiers/digits-16px.pt, which conf/experiment/quickstart.yaml
names) is trained first, by `python -m lit_gen.train_classifier` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from lit_gen.errors import ConfigError
from lit_gen.metrics import IMAGE_METRICS
from lit_gen.metrics.extractors import default_classifier_args

PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def ensure_default_classifier(cfg) -> Path | None:
    """Train the run's classifier file when it is missing at a default path; returns it."""
    m = cfg.metrics
    if m.feature_extractor != "classifier" or m.classifier_ckpt is None \
            or not any(n in IMAGE_METRICS for n in m.names) or Path(m.classifier_ckpt).is_file():
        return None
    args = default_classifier_args(m.classifier_ckpt)
    if args is None:
        return None  # validation already said the file is missing
    cmd = [sys.executable, "-m", "lit_gen.train_classifier", *args]
    print(f"lit_gen.fit: {m.classifier_ckpt} not found; training it first "
          f"(python -m lit_gen.train_classifier {' '.join(args)})", file=sys.stderr, flush=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0 or not Path(m.classifier_ckpt).is_file():
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ConfigError(f"training the default classifier {m.classifier_ckpt} failed "
                          f"(exit {done.returncode}: {tail[0]}); run `python -m "
                          f"lit_gen.train_classifier {' '.join(args)}` to see why")
    return Path(m.classifier_ckpt)
