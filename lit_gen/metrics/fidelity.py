"""torch-fidelity glue: uint8 conversion, datasets, the domain-classifier extractor, caching.

Every image metric goes through `torch_fidelity.calculate_metrics` (not a reimplementation):
input1 is a Dataset of the generated images, input2 a Dataset of the real split, both uint8
(N, 3, H, W) as torch-fidelity expects (1-channel images are repeated to 3 channels; the
extractor resizes to its own input size). The real side has an `input2_cache_name` keyed by
dataset, split, size, image content and extractor weights, so torch-fidelity's on-disk cache
(`metrics.cache_dir`) answers the second evaluation without running the extractor on it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
import torch_fidelity
from torch.utils.data import Dataset
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor

from lit_gen.data.base import resize_images
from lit_gen.errors import DataError
from lit_gen.metrics import IMAGE_METRICS
from lit_gen.metrics.extractors import ClassifierExtractor, PreparedExtractor
from lit_gen.nets.classifier import load_classifier

Tensor = torch.Tensor

# torch-fidelity result key -> lit_gen metric name
FIDELITY_KEYS = {
    "isc": {torch_fidelity.KEY_METRIC_ISC_MEAN: "isc_mean", torch_fidelity.KEY_METRIC_ISC_STD: "isc_std"},
    "fid": {torch_fidelity.KEY_METRIC_FID: "fid"},
    "kid": {torch_fidelity.KEY_METRIC_KID_MEAN: "kid_mean", torch_fidelity.KEY_METRIC_KID_STD: "kid_std"},
    "prc": {torch_fidelity.KEY_METRIC_PRECISION: "precision", torch_fidelity.KEY_METRIC_RECALL: "recall",
            torch_fidelity.KEY_METRIC_F_SCORE: "f_score"},
}


def to_uint8_rgb(x: Tensor) -> Tensor:
    """Images (N, C, H, W), float in [-1, 1] or uint8, -> uint8 (N, 3, H, W) on the CPU.

    round((x + 1) * 127.5) is the exact inverse of the data's uint8 -> [-1, 1] scaling, so
    real images come back bit for bit; grey images are repeated to 3 channels.
    """
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise DataError(f"image metrics need images (N, 1 or 3, H, W), got shape {tuple(x.shape)}")
    if x.dtype != torch.uint8:
        x = ((x.detach().float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    x = x.cpu()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x.contiguous()


class UInt8Images(Dataset):
    """A Dataset of uint8 (3, H, W) images, the input type torch-fidelity expects."""

    def __init__(self, x: Tensor, role: str = "images"):
        self.x = x
        self.role = role  # "generated" or "real" (for tests and messages)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> Tensor:
        return self.x[i]


class ClassifierFeatureExtractor(FeatureExtractorBase):
    """torch-fidelity wrapper of a `lit_gen.nets.classifier` file: features "penultimate"
    (FID/KID/PRC) and "logits" (IS). Takes uint8 (B, 3, H, W), scales to [-1, 1], averages to
    one channel for grey classifiers and resizes (antialiased bilinear) to the classifier's
    input size, the same resize the data modules use."""

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)

        if feature_extractor_weights_path is None:
            raise ValueError("the lit_gen classifier extractor needs feature_extractor_weights_path")
        self.net = load_classifier(feature_extractor_weights_path)
        self.requires_grad_(False)
        self.eval()

    @staticmethod
    def get_provided_features_list():
        return "penultimate", "logits"

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return ClassifierExtractor.layers[metric]

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, 8, 8, dtype=torch.uint8)

    def forward(self, x: Tensor):
        if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected uint8 images (B, 3, H, W), got {x.dtype} {tuple(x.shape)}")
        h = x.float() / 127.5 - 1.0
        if self.net.in_shape[0] == 1:
            h = h.mean(1, keepdim=True)
        h = resize_images(h, self.net.in_shape[-1])
        feats = self.net.features(h)
        out = {"penultimate": feats, "logits": self.net.head(feats)}
        return tuple(out[name].float() for name in self.features_list)


def register_with_fidelity(name: str, cls: type) -> None:
    """Register a FeatureExtractorBase subclass with torch-fidelity once (idempotent)."""
    if FEATURE_EXTRACTORS_REGISTRY.get(name) is cls:
        return
    register_feature_extractor(name, cls)


register_with_fidelity(ClassifierExtractor.fidelity_name, ClassifierFeatureExtractor)


@dataclass(frozen=True)
class FidelityOptions:
    """The knobs of the torch-fidelity computation (all recorded in the protocol)."""

    batch_size: int = 64
    cache_dir: str | None = None
    isc_splits: int = 10
    kid_subsets: int = 100
    kid_subset_size: int = 1000
    prc_neighborhood: int = 3
    rng_seed: int = 2020  # torch-fidelity's default seed (IS shuffling, KID subsets)


def content_hash(x: Tensor) -> str:
    """sha256 of a uint8 tensor's shape and bytes."""
    h = hashlib.sha256(str(tuple(x.shape)).encode())
    h.update(x.contiguous().numpy().tobytes())
    return h.hexdigest()


def real_cache_name(dataset: str, split: str, real_u8: Tensor, extractor: PreparedExtractor) -> str:
    """torch-fidelity cache entry for the real images: dataset, split, count, size, a hash of
    the images themselves (any change to the data config changes it) and the extractor's
    name and weights hash (a retrained classifier never reuses stale statistics)."""
    n, _, h, w = real_u8.shape
    return (f"lit_gen-{dataset}-{split}-n{n}-{h}x{w}-{content_hash(real_u8)[:16]}"
            f"-{extractor.name}-{extractor.sha256[:16]}")


def fidelity_metrics(fake: Tensor, real: Tensor | None, names, extractor: PreparedExtractor,
                     options: FidelityOptions = FidelityOptions(), *, cache_name: str | None = None,
                     device: str | torch.device = "cpu") -> tuple[dict[str, float], dict]:
    """IS / FID / KID / PRC of `fake` against `real` through torch-fidelity.

    Args:
        fake: generated images (N, C, H, W), float in [-1, 1] or uint8.
        real: real images (M, C, H, W) (needed for fid, kid, prc).
        names: metrics to compute, a subset of ("isc", "fid", "kid", "prc").
        extractor: the prepared feature extractor (weights resolved).
        cache_name: torch-fidelity cache entry for `real` (None: no caching).
        device: where the extractor runs.

    Returns:
        (values, protocol): {"fid": ..., "isc_mean": ...}, and the settings that produced them.
    """
    names = [n for n in IMAGE_METRICS if n in names]
    fake_u8 = to_uint8_rgb(fake)
    binary = any(n in names for n in ("fid", "kid", "prc"))
    real_u8 = to_uint8_rgb(real) if binary else None
    kid_subset_size = options.kid_subset_size
    if "kid" in names:
        kid_subset_size = min(kid_subset_size, len(fake_u8), len(real_u8))
    cuda = torch.device(device).type == "cuda"
    kwargs = dict(
        input1=UInt8Images(fake_u8, "generated"),
        cuda=cuda, batch_size=options.batch_size, verbose=False,
        feature_extractor=extractor.fidelity_name,
        feature_extractor_weights_path=extractor.weights_path,
        isc_splits=options.isc_splits, kid_subsets=options.kid_subsets,
        kid_subset_size=kid_subset_size, prc_neighborhood=options.prc_neighborhood,
        prc_batch_size=1000, rng_seed=options.rng_seed,
        # num_workers=0 (the images are already in memory) and PRC distances in blocks
        save_cpu_ram=True,
        cache_root=options.cache_dir, cache=cache_name is not None,
        **{n: True for n in names},
        **{f"feature_layer_{n}": extractor.layers[n] for n in names},
    )
    if binary:
        kwargs.update(input2=UInt8Images(real_u8, "real"), input2_cache_name=cache_name)
    if cuda:
        with torch.cuda.device(torch.device(device)):
            raw = torch_fidelity.calculate_metrics(**kwargs)
    else:
        raw = torch_fidelity.calculate_metrics(**kwargs)
    values = {ours: float(raw[theirs]) for n in names for theirs, ours in FIDELITY_KEYS[n].items()}
    protocol = {
        "feature_extractor": extractor.name,
        "feature_extractor_weights": extractor.weights_path,
        "feature_extractor_sha256": extractor.sha256,
        "feature_layers": {n: extractor.layers[n] for n in names},
        "image_size": extractor.input_size,  # side the extractor network sees
        "sample_size": list(fake_u8.shape[-2:]),  # side of the images handed to it
        "n_generated": len(fake_u8),
        "n_real": len(real_u8) if real_u8 is not None else 0,
        "torch_fidelity_version": torch_fidelity.__version__,
        **extractor.info,
    }
    if "isc" in names:
        protocol["isc_splits"] = options.isc_splits
    if "kid" in names:
        protocol.update(kid_subsets=options.kid_subsets, kid_subset_size=kid_subset_size)
    if "prc" in names:
        protocol["prc_neighborhood"] = options.prc_neighborhood
    if cache_name is not None:
        protocol["real_cache_name"] = cache_name
    return values, protocol
