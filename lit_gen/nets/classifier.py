"""A small CNN classifier: the domain feature extractor for FID/IS on small images.

Plain nn.Module (no Lightning). `python -m lit_gen.train_classifier` trains and saves it;
`lit_gen.metrics` loads it as a torch-fidelity feature extractor.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lit_gen.errors import CheckpointError, ConfigError
from lit_gen.io import torch_load
from lit_gen.registry import Registry

CLASSIFIER_FORMAT = "lit_gen.classifier/1"


class DomainClassifier(nn.Module):
    """image (B, C, H, W) in [-1, 1] -> logits (B, num_classes); `features(x)` -> (B, feature_dim).

    Blocks of two 3x3 conv + batch norm + ReLU, each followed by a 2x2 max-pool while the side
    is >= 8, then one more block (8 px: 2 blocks, 16 px: 3, 28/32 px: 3/4); global average
    pooling; a hidden layer of `feature_dim` units (the
    penultimate features used for FID/KID/PRC) and a linear layer to the logits (used for IS),
    in the spirit of the MNIST classifiers used for GAN evaluation (e.g. Che et al. 2017's
    mode score, Lucic et al. 2018).

    Args:
        in_shape: (C, H, W), square, H >= 8.
        num_classes: number of labels.
        base_channels: channels of the first block, doubled per block.
        feature_dim: size of the penultimate layer.
        dropout: dropout before the logits (training only).
    """

    def __init__(self, in_shape: Sequence[int], num_classes: int, base_channels: int = 32,
                 feature_dim: int = 128, dropout: float = 0.3):
        super().__init__()
        c, h, w = in_shape
        if h != w or h < 8:
            raise ConfigError(f"classifier: needs square images of at least 8 px, got {h}x{w}")
        if num_classes < 2:
            raise ConfigError("classifier: the data needs labels (at least 2 classes)")
        self.in_shape = (int(c), int(h), int(w))
        self.num_classes = num_classes
        self.feature_dim = feature_dim
        layers: list[nn.Module] = []
        side, c_in, c_out = h, c, base_channels
        while True:
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                       nn.ReLU(inplace=True),
                       nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                       nn.ReLU(inplace=True)]
            c_in, c_out = c_out, c_out * 2
            if side < 8:
                break
            layers.append(nn.MaxPool2d(2))
            side //= 2
        self.body = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.hidden = nn.Sequential(nn.Linear(c_in, feature_dim), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.hidden(self.body(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


CLASSIFIERS: Registry = Registry("classifier net")
CLASSIFIERS.add("cnn", DomainClassifier)


def save_classifier(path: str | Path, net: nn.Module, name: str, kwargs: dict, **meta) -> Path:
    """Write a classifier file: net name, constructor arguments, weights and `meta`
    (data config, accuracies) — everything needed to rebuild it without other files."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": CLASSIFIER_FORMAT, "net": name, "kwargs": kwargs,
               "in_shape": list(net.in_shape), "num_classes": net.num_classes,
               "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()}, **meta}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def read_classifier(path: str | Path) -> dict[str, Any]:
    """The classifier file's dict, or a CheckpointError saying why it cannot be used."""

    p = Path(path)
    ckpt = torch_load(p, "classifier file",
                      "pass a file written by `python -m lit_gen.train_classifier`")
    if not isinstance(ckpt, dict) or ckpt.get("format") != CLASSIFIER_FORMAT:
        raise CheckpointError(f"{p} is not a lit_gen classifier file; pass a file written by "
                              "`python -m lit_gen.train_classifier`")
    return ckpt


def load_classifier(path: str | Path, device: str | torch.device = "cpu") -> DomainClassifier:
    """Rebuild a saved classifier with its weights, in eval mode."""
    ckpt = read_classifier(path)
    cls = CLASSIFIERS.get(ckpt["net"], "classifier net")
    net = cls(ckpt["in_shape"], ckpt["num_classes"], **ckpt["kwargs"])
    net.load_state_dict(ckpt["state_dict"])
    return net.to(device).eval()
