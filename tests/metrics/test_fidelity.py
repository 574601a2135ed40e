"""The torch-fidelity glue: correctness against numpy/scipy, IS bounds, caching, extractors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from lit_gen.metrics import fidelity
from lit_gen.metrics.fidelity import FidelityOptions, fidelity_metrics, to_uint8_rgb
from tests.metrics.testutil import N_CLASSES, fixed_extractor, random_inception_weights


def grey_images(n: int, seed: int, shift: float = 0.0, size: int = 4) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, size, size, generator=g) * 1.6 - 0.8 + shift).clamp(-1, 1)


def frechet_reference(f1: np.ndarray, f2: np.ndarray) -> float:
    """Heusel et al. 2017: |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)), with scipy."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_uint8_conversion_roundtrips_real_data():
    u = torch.randint(0, 256, (10, 1, 5, 5), dtype=torch.uint8)
    x = u.float() / 127.5 - 1.0  # how the data modules scale uint8 images
    out = to_uint8_rgb(x)
    assert out.dtype == torch.uint8 and out.shape == (10, 3, 5, 5)
    assert torch.equal(out[:, 0], u[:, 0]) and torch.equal(out[:, 2], u[:, 0])
    assert torch.equal(to_uint8_rgb(torch.tensor([[[[-3.0, 3.0]]]])), torch.tensor([[[[0, 255]]] * 3]))


def test_fid_equals_scipy_frechet_distance():
    fake, real = grey_images(300, 0), grey_images(400, 1, shift=0.2)
    values, protocol = fidelity_metrics(fake, real, ["fid"], fixed_extractor())
    f1 = to_uint8_rgb(fake)[:, 0].flatten(1).double().numpy()
    f2 = to_uint8_rgb(real)[:, 0].flatten(1).double().numpy()
    ref = frechet_reference(f1, f2)
    assert ref > 100  # the shift makes the sets clearly different
    assert values["fid"] == pytest.approx(ref, rel=1e-4)
    assert protocol["n_generated"] == 300 and protocol["n_real"] == 400


def test_fid_of_a_set_against_itself_is_zero():
    x = grey_images(300, 2)
    values, _ = fidelity_metrics(x, x.clone(), ["fid"], fixed_extractor())
    assert values["fid"] == pytest.approx(0.0, abs=1e-6)


def test_inception_score_uniform_logits_is_one():
    x = grey_images(100, 3)
    values, _ = fidelity_metrics(x, None, ["isc"], fixed_extractor(isc_layer="uniform"))
    assert values["isc_mean"] == pytest.approx(1.0, abs=1e-9)
    assert values["isc_std"] == pytest.approx(0.0, abs=1e-9)


def test_inception_score_confident_balanced_is_num_classes():
    # pixel value 50 * c (c = 0..4) puts the image in class c with a 100-logit margin
    per_class = 20
    levels = torch.arange(N_CLASSES).repeat_interleave(per_class) * 50 + 10
    u8 = levels.view(-1, 1, 1, 1).expand(-1, 1, 4, 4).to(torch.uint8)
    values, _ = fidelity_metrics(u8, None, ["isc"], fixed_extractor(),
                                 FidelityOptions(isc_splits=1))
    assert values["isc_mean"] == pytest.approx(float(N_CLASSES), rel=1e-9)
    # collapsed onto one class: IS = 1
    values, _ = fidelity_metrics(u8[:per_class], None, ["isc"], fixed_extractor(),
                                 FidelityOptions(isc_splits=1))
    assert values["isc_mean"] == pytest.approx(1.0, rel=1e-9)


def kid_reference(f1: np.ndarray, f2: np.ndarray) -> float:
    """Binkowski et al. 2018: unbiased MMD^2 with the kernel (x.y / d + 1)^3, in float64."""
    d = f1.shape[1]
    k = lambda a, b: (a @ b.T / d + 1.0) ** 3  # noqa: E731
    m, n = len(f1), len(f2)
    kxx, kyy, kxy = k(f1, f1), k(f2, f2), k(f1, f2)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


def test_kid_equals_numpy_mmd_and_prc_bounds():
    fake, real = grey_images(200, 4), grey_images(200, 8, shift=0.1)
    # one subset of every sample: torch-fidelity's subset is a permutation, MMD^2 unchanged
    values, protocol = fidelity_metrics(fake, real, ["kid", "prc"], fixed_extractor(),
                                        FidelityOptions(kid_subset_size=200, kid_subsets=1))
    f1 = to_uint8_rgb(fake)[:, 0].flatten(1).double().numpy() / 255
    f2 = to_uint8_rgb(real)[:, 0].flatten(1).double().numpy() / 255
    ref = kid_reference(f1, f2)
    assert ref > 1e-3
    assert values["kid_mean"] == pytest.approx(ref, rel=1e-3)
    assert protocol["kid_subset_size"] == 200 and protocol["kid_subsets"] == 1
    assert 0.0 < values["precision"] < 1.0 and 0.0 < values["recall"] < 1.0
    same, _ = fidelity_metrics(fake, fake.clone(), ["prc"], fixed_extractor())
    assert same["precision"] == pytest.approx(1.0) and same["recall"] == pytest.approx(1.0)
    far, _ = fidelity_metrics(torch.full_like(fake, 1.0), real.clamp(max=0.5), ["prc"], fixed_extractor())
    assert far["precision"] == pytest.approx(0.0) and far["recall"] == pytest.approx(0.0)


def first_pixel_classes(classes: list[int]) -> torch.Tensor:
    """Images whose first pixel puts them in the fixed extractor's class c (uint8 50c + 10)."""
    x = torch.zeros(len(classes), 1, 4, 4)
    x[:, 0, 0, 0] = (torch.tensor(classes, dtype=torch.float32) * 50 + 10) / 127.5 - 1
    return x


def test_classes_metric_counts_the_classifier_predictions():
    real = first_pixel_classes([0] * 3 + [1] * 3 + [4] * 4)  # p = (.3, .3, 0, 0, .4)
    fake = first_pixel_classes([0] * 2 + [4] * 8)  # q = (.2, 0, 0, 0, .8)
    values, protocol = fidelity_metrics(fake, real, ["classes"], fixed_extractor())
    assert values["classes_covered"] == 2
    # .2 ln(.2 / .3) + .8 ln(.8 / .4)
    assert values["class_reverse_kl"] == pytest.approx(0.4734247, abs=1e-6)
    assert protocol["classes"]["counts"] == {"real": [3, 3, 0, 0, 4], "generated": [2, 0, 0, 0, 8]}
    assert protocol["classes"]["min_share"] == 0.1
    assert protocol["feature_layers"] == {"classes": "onehot"}


def test_real_statistics_are_cached(tmp_path, monkeypatch, digits_classifier):
    """Second evaluation: the real images are not fed to the extractor again, same numbers."""
    from lit_gen import validation
    from lit_gen.data import build_datamodule
    from lit_gen.metrics.evaluator import Evaluator

    cfg = validation.load([], ["data.name=digits", "metrics.names=[fid,isc,kid,prc]",
                           "metrics.feature_extractor=classifier", "metrics.real_split=test",
                           f"metrics.classifier_ckpt={digits_classifier}", "metrics.num_samples=60",
                           f"metrics.cache_dir={tmp_path / 'cache'}", "metrics.isc_splits=2"])
    dm = build_datamodule(cfg.data)
    fake = grey_images(60, 5, size=8)
    reads = {"real": 0, "generated": 0}
    original = fidelity.UInt8Images.__getitem__

    def counting(self, i):
        reads[self.role] += 1
        return original(self, i)

    monkeypatch.setattr(fidelity.UInt8Images, "__getitem__", counting)
    first = Evaluator(cfg.metrics, dm).compute({"samples": fake})
    # every image once (torch-fidelity also reads item 0 once to check its type)
    assert 297 <= reads["real"] <= 298 and 60 <= reads["generated"] <= 61
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert files and all(f.startswith("lit_gen-digits-test-n297-8x8-") for f in files)
    reads.update(real=0, generated=0)
    second = Evaluator(cfg.metrics, dm).compute({"samples": fake})  # a new run, same cache
    assert reads["real"] == 0 and 60 <= reads["generated"] <= 61
    assert second[0] == first[0]
    proto = first[1]
    assert proto["real_split"] == "test" and proto["n_real"] == 297 and proto["n_generated"] == 60
    assert proto["feature_extractor"] == "classifier" and proto["image_size"] == 8
    assert proto["feature_layers"] == {"isc": "logits", "fid": "penultimate",
                                       "kid": "penultimate", "prc": "penultimate"}
    import hashlib

    assert proto["feature_extractor_sha256"] == hashlib.sha256(digits_classifier.read_bytes()).hexdigest()
    assert proto["real_cache_name"].endswith(proto["feature_extractor_sha256"][:16])
    import torch_fidelity

    assert proto["torch_fidelity_version"] == torch_fidelity.__version__


def test_classifier_fid_of_real_split_against_itself_is_zero_and_noise_is_far(digits_classifier):
    from lit_gen import validation
    from lit_gen.data import build_datamodule
    from lit_gen.metrics.extractors import prepare_extractor

    cfg = validation.load([], ["data.name=digits", "metrics.feature_extractor=classifier",
                           f"metrics.classifier_ckpt={digits_classifier}"])
    ext = prepare_extractor(cfg.metrics)
    x, _ = build_datamodule(cfg.data).split("test")
    same, _ = fidelity_metrics(x, x.clone(), ["fid", "classes"], ext)
    assert same["fid"] == pytest.approx(0.0, abs=1e-3)
    assert same["classes_covered"] == 10 and same["class_reverse_kl"] == pytest.approx(0.0, abs=1e-12)
    noise, _ = fidelity_metrics(grey_images(297, 6, size=8), x, ["fid"], ext)
    assert noise["fid"] > 1.0


def test_random_inception_from_local_weights(tmp_path):
    """The real torch-fidelity Inception code path, weights from a local file (no network)."""
    from lit_gen import validation
    from lit_gen.metrics.extractors import file_sha256, prepare_extractor

    weights = random_inception_weights(tmp_path / "inception.pth")
    cfg = validation.load([], ["data.name=digits", "metrics.names=[fid,isc]",
                           f"metrics.inception_weights={weights}"])
    ext = prepare_extractor(cfg.metrics)
    assert ext.sha256 == file_sha256(weights) and ext.input_size == 299
    x = grey_images(12, 7, size=8)
    values, protocol = fidelity_metrics(x, x.clone(), ["fid", "isc"], ext,
                                        FidelityOptions(batch_size=12, isc_splits=2))
    assert values["fid"] == pytest.approx(0.0, abs=1e-3 * max(1.0, values["fid"] + 1))
    assert 1.0 <= values["isc_mean"] < 1008
    assert protocol["feature_extractor"] == "inception-v3-compat"
    assert protocol["feature_layers"] == {"fid": "2048", "isc": "logits_unbiased"}
    assert protocol["image_size"] == 299 and protocol["sample_size"] == [8, 8]
