"""torch-fidelity glue: uint8 conversion, datasets, the domain-classifier extractor, caching.

Every image metric reads features extracted by torch-fidelity, and IS/FID/KID/PRC are
torch-fidelity's own metric functions (what `torch_fidelity.calculate_metrics` calls):
input1 is a Dataset of the generated images, input2 a Dataset of the real split, both uint8
(N, 3, H, W) as torch-fidelity expects (1-channel images are repeated to 3 channels; the
extractor resizes to its own input size). The real side has an `input2_cache_name` keyed by
dataset, split, size, image content and extractor weights, so torch-fidelity's on-disk cache
(`metrics.cache_dir`) answers the second evaluation without running the extractor on it.
"""

from __future__ import annotations

import hashlib
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch_fidelity
import torchvision
from torch.utils.data import Dataset
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.feature_extractor_dinov2 import FeatureExtractorDinoV2
from torch_fidelity.feature_extractor_vgg16 import FeatureExtractorVGG16
from torch_fidelity.helpers import text_to_dtype
from torch_fidelity.metric_fid import (
    fid_featuresdict_to_statistics_cached,
    fid_input_id_to_statistics_cached,
    fid_statistics_to_metric,
)
from torch_fidelity.metric_isc import isc_featuresdict_to_metric
from torch_fidelity.metric_kid import kid_featuresdict_to_metric
from torch_fidelity.metric_prc import prc_featuresdict_to_metric
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY, register_feature_extractor
from torch_fidelity.utils import create_feature_extractor, extract_featuresdict_from_input_id_cached

from lit_gen.data.base import resize_images
from lit_gen.errors import DataError
from lit_gen.metrics import IMAGE_METRICS
from lit_gen.metrics import feature_metrics as fm
from lit_gen.metrics.extractors import ClassifierExtractor, PreparedExtractor
from lit_gen.metrics.vit import DinoV2ViT
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


def safe_state_dict(path: str) -> dict:
    """A weights file as a state dict, read with weights_only=True (never runs its code)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError) as err:
        raise DataError(f"cannot read the feature extractor weights {path} ({type(err).__name__}); "
                        "download the file again") from None


def init_from_file(extractor, name, features_list, model, weights_path, dtype) -> None:
    """The shared set-up of an extractor whose backbone `model` is read from a local file
    (safely) instead of torch-fidelity's own loader: frozen, in eval mode, in `dtype`."""
    FeatureExtractorBase.__init__(extractor, name, features_list)
    if weights_path is None:
        raise ValueError(f"{name} needs feature_extractor_weights_path")
    extractor.feature_extractor_internal_dtype = text_to_dtype(dtype, "float32")
    extractor.model = model
    model.load_state_dict(safe_state_dict(weights_path))
    extractor.to(extractor.feature_extractor_internal_dtype)
    extractor.requires_grad_(False)
    extractor.eval()


class DinoV2FromFile(FeatureExtractorDinoV2):
    """torch-fidelity's DINOv2 extractor (its resize, normalisation and features) with the
    backbone built by `lit_gen.metrics.vit` from a local `*_pretrain.pth` file."""

    def __init__(self, name, features_list, feature_extractor_weights_path=None,
                 feature_extractor_internal_dtype=None, **kwargs):
        init_from_file(self, name, features_list, DinoV2ViT(name.removeprefix("lit-gen-")),
                       feature_extractor_weights_path, feature_extractor_internal_dtype)


class VGG16FromFile(FeatureExtractorVGG16):
    """torch-fidelity's VGG16 extractor (fc2 / fc2_relu), its state dict read safely
    (torch-fidelity's own loader would unpickle the file, which can run its code)."""

    def __init__(self, name, features_list, feature_extractor_weights_path=None,
                 feature_extractor_internal_dtype=None, **kwargs):
        init_from_file(self, name, features_list, torchvision.models.vgg16(),
                       feature_extractor_weights_path, feature_extractor_internal_dtype)
        for tail in (6, 5, 4):  # as torch-fidelity: stop at fc2
            del self.model.classifier[tail]


for _size in "sblg":
    register_with_fidelity(f"lit-gen-dinov2-vit-{_size}-14", DinoV2FromFile)
register_with_fidelity("lit-gen-vgg16", VGG16FromFile)


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


@dataclass(frozen=True)
class FeatureMetricOptions:
    """Settings of the feature-space metrics beyond torch-fidelity's (all in the protocol)."""

    dc_neighborhood: int = 5
    memorization_cells: int = 10
    memorization_min_cell: int = 20
    fd_inf_points: int = 5
    fd_inf_min_samples: int | None = None
    class_min_share: float = 0.1
    seed: int = 0


def _fidelity_kwargs(extractor: PreparedExtractor, options: FidelityOptions, cuda: bool) -> dict:
    """The torch-fidelity keyword arguments shared by feature extraction and the metrics."""
    return dict(cuda=cuda, batch_size=options.batch_size, verbose=False,
                feature_extractor=extractor.fidelity_name,
                feature_extractor_weights_path=extractor.weights_path,
                feature_extractor_internal_dtype=extractor.dtype,
                isc_splits=options.isc_splits, kid_subsets=options.kid_subsets,
                prc_neighborhood=options.prc_neighborhood, prc_batch_size=1000,
                rng_seed=options.rng_seed,
                # num_workers=0 (the images are already in memory) and PRC distances in blocks
                save_cpu_ram=True, cache_root=options.cache_dir)


class _Side:
    """One input of torch-fidelity (1: generated, 2: a real set) with lazy, cached features:
    `features()` runs the extractor (or reads torch-fidelity's cache) once; `fid_stats()`
    reads the cached FID statistics without loading the features when it can."""

    def __init__(self, images: Tensor, role: str, cache_name: str | None, fe, kwargs,
                 stats_only: bool = False):
        self.input_id = 1 if role == "generated" else 2
        self.n = len(images)
        self.kwargs = {**kwargs, f"input{self.input_id}": UInt8Images(images, role),
                       f"input{self.input_id}_cache_name": cache_name,
                       "cache": cache_name is not None}
        self.fe, self.cache_name, self.stats_only = fe, cache_name, stats_only
        self._features: dict | None = None

    def features(self) -> dict[str, Tensor]:
        if self._features is None:
            self._features = extract_featuresdict_from_input_id_cached(self.input_id, self.fe,
                                                                       **self.kwargs)
        return self._features

    def fid_stats(self, layer: str) -> dict:
        if self.stats_only and self._features is None and self.cache_name is not None:
            return fid_input_id_to_statistics_cached(self.input_id, self.fe, layer, **self.kwargs)
        return fid_featuresdict_to_statistics_cached(self.features(), self.cache_name, self.fe,
                                                     layer, **self.kwargs)


def fidelity_metrics(fake: Tensor, real: Tensor | None, names, extractor: PreparedExtractor,
                     options: FidelityOptions = FidelityOptions(), *, cache_name: str | None = None,
                     device: str | torch.device = "cpu", heldout: Tensor | None = None,
                     heldout_cache_name: str | None = None,
                     feature_options: FeatureMetricOptions = FeatureMetricOptions(),
                     ) -> tuple[dict[str, float], dict]:
    """Image metrics of `fake` against `real` on the extractor's features.

    The features of each side are extracted once by torch-fidelity (the real sides through
    its on-disk cache) and every metric reads them: IS / FID / KID / PRC through
    torch-fidelity's own metric functions (as `torch_fidelity.calculate_metrics` does), and
    density/coverage, the data-copying test and FD-infinity (`lit_gen.metrics.feature_metrics`)
    on the FID layer.

    Args:
        fake: generated images (N, C, H, W), float in [-1, 1] or uint8.
        real: real images (M, C, H, W) (needed for every metric but isc).
        names: metrics to compute, a subset of IMAGE_METRICS.
        extractor: the prepared feature extractor (weights resolved).
        cache_name: torch-fidelity cache entry for `real` (None: no caching).
        device: where the extractor runs.
        heldout: real images not trained on (`memorization`), with `heldout_cache_name`.
        feature_options: density/coverage, memorization and FD-infinity settings.

    Returns:
        (values, protocol): {"fid": ..., "isc_mean": ...}, and the settings that produced them.
    """
    names = [n for n in IMAGE_METRICS if n in names]
    fake_u8 = to_uint8_rgb(fake)
    binary = any(n != "isc" for n in names)
    real_u8 = to_uint8_rgb(real) if binary else None
    if "memorization" in names and heldout is None:
        raise DataError("the memorization metric needs held-out real images (metrics.memorization_split)")
    kid_subset_size = options.kid_subset_size
    if "kid" in names:
        kid_subset_size = min(kid_subset_size, len(fake_u8), len(real_u8))
    cuda = torch.device(device).type == "cuda"
    kwargs = _fidelity_kwargs(extractor, options, cuda)
    kwargs["kid_subset_size"] = kid_subset_size
    feat = extractor.layers["fid"]  # the features of FID / PRC / density-coverage / copying
    used = {extractor.layers[n] if n in extractor.layers else feat for n in names}
    ctx = torch.cuda.device(torch.device(device)) if cuda else nullcontext()
    values: dict[str, float] = {}
    extra: dict = {}
    with ctx:
        fe = create_feature_extractor(extractor.fidelity_name, sorted(used), **kwargs)
        gen = _Side(fake_u8, "generated", None, fe, kwargs)
        # FID alone needs only the real statistics (torch-fidelity caches them separately)
        stats_only = not any(n in names for n in ("kid", "prc", "dc", "memorization", "classes"))
        ref = _Side(real_u8, "real", cache_name, fe, kwargs, stats_only) if binary else None
        if "isc" in names:
            raw = isc_featuresdict_to_metric(gen.features(), extractor.layers["isc"], **kwargs)
            values.update(_rename("isc", raw))
        if "fid" in names:
            raw = fid_statistics_to_metric(gen.fid_stats(feat), ref.fid_stats(feat), False)
            values.update(_rename("fid", raw))
        if "kid" in names:
            raw = kid_featuresdict_to_metric(gen.features(), ref.features(), extractor.layers["kid"],
                                             **kwargs)
            values.update(_rename("kid", raw))
        if "prc" in names:
            raw = prc_featuresdict_to_metric(gen.features(), ref.features(), extractor.layers["prc"],
                                             **kwargs)
            values.update(_rename("prc", raw))
        if "dc" in names:
            values.update(fm.density_coverage(ref.features()[feat], gen.features()[feat],
                                              feature_options.dc_neighborhood))
        if "memorization" in names:
            held = _Side(to_uint8_rgb(heldout), "heldout", heldout_cache_name, fe, kwargs)
            copying = fm.data_copying_ct(ref.features()[feat], held.features()[feat],
                                         gen.features()[feat], feature_options.memorization_cells,
                                         feature_options.memorization_min_cell, feature_options.seed)
            values.update(ct_score=copying["ct_score"], nn_distance_ratio=copying["nn_distance_ratio"])
            extra["memorization"] = {"n_heldout": held.n, "cells": copying["cells"],
                                     "cells_used": copying["cells_used"],
                                     "min_cell": feature_options.memorization_min_cell,
                                     "heldout_cache_name": heldout_cache_name,
                                     "test": "Meehan et al. 2020 C_T"}
        if "fd_inf" in names:
            sizes = fm.sample_sizes(len(fake_u8), feature_options.fd_inf_points,
                                    feature_options.fd_inf_min_samples)
            out = fm.fd_infinity(gen.features()[feat], ref.fid_stats(feat), sizes, feature_options.seed)
            values["fd_inf"] = out["fd_inf"]
            values.update({f"fid_n{n}": v for n, v in out["fid_n"].items()})
            extra["fd_inf"] = {"sample_sizes": sizes, "slope": out["slope"],
                               "fit": "FID_n = fd_inf + slope / n (Chong & Forsyth 2020)"}
        if "classes" in names:
            layer = extractor.layers["classes"]
            found, counts = fm.class_coverage(ref.features()[layer], gen.features()[layer],
                                              feature_options.class_min_share)
            values.update(found)
            extra["classes"] = {"min_share": feature_options.class_min_share,
                                "counts": counts, "predicted_by": extractor.name}
    protocol = {
        "feature_extractor": extractor.name,
        "feature_extractor_weights": extractor.weights_path,
        "feature_extractor_sha256": extractor.sha256,
        "feature_layers": {n: extractor.layers.get(n, feat) for n in names},
        "image_size": extractor.input_size,  # side the extractor network sees
        "resize": extractor.resize,  # how images are brought to image_size
        "extractor_batch_size": options.batch_size,
        "extractor_dtype": extractor.dtype or "float32",
        "extractor_device": str(torch.device(device)),
        "sample_size": list(fake_u8.shape[-2:]),  # side of the images handed to it
        "n_generated": len(fake_u8),
        "n_real": len(real_u8) if real_u8 is not None else 0,
        "torch_fidelity_version": torch_fidelity.__version__,
        **extractor.info,
        **extra,
    }
    if "fid" in names:
        protocol["fid_n"] = len(fake_u8)  # FID is biased upward at small n: compare equal n only
    if "isc" in names:
        protocol["isc_splits"] = options.isc_splits
    if "kid" in names:
        protocol.update(kid_subsets=options.kid_subsets, kid_subset_size=kid_subset_size)
    if "prc" in names:
        protocol["prc_neighborhood"] = options.prc_neighborhood
    if "dc" in names:
        protocol["dc_neighborhood"] = feature_options.dc_neighborhood
    if cache_name is not None and binary:
        protocol["real_cache_name"] = cache_name
    return values, protocol


def _rename(metric: str, raw: dict) -> dict[str, float]:
    return {ours: float(raw[theirs]) for theirs, ours in FIDELITY_KEYS[metric].items()}
