"""Helpers for the metrics tests: a fixed-feature torch-fidelity extractor, a randomly
initialised Inception weights file, and the DDP worker (importable by spawned processes)."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import torch
from torch_fidelity.feature_extractor_base import FeatureExtractorBase

from lit_gen.metrics.extractors import PreparedExtractor
from lit_gen.metrics.fidelity import register_with_fidelity

N_CLASSES = 5


class FixedFeatures(FeatureExtractorBase):
    """Features that are plain functions of the uint8 input, so tests can compute the same
    features independently:

    - "pixels": channel 0 flattened, as float (B, H*W);
    - "unit": the same divided by 255 (kernel values of order 1 for KID);
    - "onehot": logits 100 * one_hot(x[0, 0, 0] // 50) over N_CLASSES classes (confident);
    - "uniform": zero logits over N_CLASSES classes.
    """

    def __init__(self, name, features_list, **kwargs):
        super().__init__(name, features_list)

    @staticmethod
    def get_provided_features_list():
        return "pixels", "unit", "onehot", "uniform"

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return "onehot" if metric == "isc" else "pixels"

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, 4, 4, dtype=torch.uint8)

    def forward(self, x):
        assert x.dtype == torch.uint8 and x.shape[1] == 3
        cls = (x[:, 0, 0, 0].long() // 50).clamp(max=N_CLASSES - 1)
        out = {"pixels": x[:, 0].flatten(1).float(), "unit": x[:, 0].flatten(1).float() / 255,
               "onehot": 100.0 * torch.nn.functional.one_hot(cls, N_CLASSES).float(),
               "uniform": torch.zeros(len(x), N_CLASSES)}
        return tuple(out[n] for n in self.features_list)


register_with_fidelity("lit-gen-test-fixed", FixedFeatures)


def fixed_extractor(isc_layer: str = "onehot") -> PreparedExtractor:
    layers = {"fid": "pixels", "kid": "unit", "prc": "unit", "isc": isc_layer, "classes": "onehot"}
    return PreparedExtractor("fixed", "lit-gen-test-fixed", "none", "0" * 64, 0, layers)


def random_inception_weights(path: Path, seed: int = 0) -> Path:
    """Save a randomly initialised torch-fidelity Inception-v3 state dict (no download)."""
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    torch.manual_seed(seed)
    with mock.patch.object(FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None), \
            mock.patch("torch_fidelity.feature_extractor_inceptionv3.torch.load", return_value={}):
        net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                          feature_extractor_weights_path="unused")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    return path


def fixed_samples(n_points: int = 400, n_images: int = 240, seed: int = 0) -> dict[str, torch.Tensor]:
    """Deterministic toy points near ring2d modes and small grey images in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    angles = torch.randint(0, 8, (n_points,), generator=g).double() * (2 * torch.pi / 8)
    points = torch.stack([angles.cos(), angles.sin()], 1) + 0.02 * torch.randn(n_points, 2, generator=g,
                                                                                dtype=torch.float64)
    images = torch.rand(n_images, 1, 4, 4, generator=g) * 2 - 1
    return {"points": points.float(), "images": images}


def ddp_compute(inputs: dict[str, torch.Tensor], cache_dir: str) -> dict:
    """The metrics the DDP test compares: toy metrics on the points, fidelity metrics on the
    images (first half against the second half as "real")."""
    from lit_gen.metrics.fidelity import FeatureMetricOptions, FidelityOptions, fidelity_metrics
    from lit_gen.metrics.toy import toy_mode_metrics

    angles = torch.arange(8, dtype=torch.float64) * (2 * torch.pi / 8)
    modes = torch.stack([angles.cos(), angles.sin()], 1)
    values = dict(toy_mode_metrics(inputs["points"], modes, std=0.01))
    images = inputs["images"]
    half = len(images) // 2
    v, _ = fidelity_metrics(images[:half], images[half:],
                            ["isc", "fid", "kid", "prc", "dc", "memorization", "fd_inf"],
                            fixed_extractor(), FidelityOptions(batch_size=32, cache_dir=cache_dir,
                                                               kid_subset_size=50, isc_splits=2),
                            cache_name=None, heldout=images[half:].flip(-1),
                            feature_options=FeatureMetricOptions(memorization_cells=3,
                                                                 memorization_min_cell=5))
    values.update(v)
    return values


def ddp_worker(rank: int, world: int, init_file: str, cache_dir: str, out_dir: str) -> None:
    """One rank: take its contiguous share of the fixed samples, gather, compute on rank 0,
    receive the broadcast result and save it."""
    import torch.distributed as dist

    from lit_gen.metrics.distributed import gather_and_compute, share

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        samples = fixed_samples()
        local = {}
        for key, value in samples.items():
            idx = share(len(value), rank, world)
            local[key] = value[idx.start:idx.stop]
        result = gather_and_compute(local, lambda inputs: ddp_compute(inputs, cache_dir))
        torch.save(result, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()
