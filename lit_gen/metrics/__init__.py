"""Sample-quality and likelihood metrics."""

from __future__ import annotations

from lit_gen.errors import ConfigError

METRIC_NAMES = ("isc", "fid", "kid", "prc", "toy", "likelihood")


def validate_metrics_config(cfg) -> None:
    for name in cfg.metrics.names:
        if name not in METRIC_NAMES:
            raise ConfigError(f"metrics.names: unknown metric '{name}'. "
                              f"Valid metrics: {', '.join(METRIC_NAMES)}")
    if cfg.metrics.real_split not in ("train", "val", "test"):
        raise ConfigError(f"metrics.real_split must be train, val or test, "
                          f"got '{cfg.metrics.real_split}'")
