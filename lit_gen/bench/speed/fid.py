"""FID timing: lit_gen's metric code against torch-fidelity called directly, first call
(real statistics computed) and second call (read from the cache)."""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from lit_gen.bench.speed.lit import ROOT, load_data
from lit_gen.bench.speed.measure import clock_now, median, peak_memory, status
from lit_gen.bench.speed.settings import FID_SPEEDUP_TARGET, Settings
from lit_gen.errors import ConfigError
from lit_gen.metrics.fidelity import UInt8Images, to_uint8_rgb

INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"


def inception_weights(tmp: Path, seed: int) -> tuple[str, str]:
    """(path, kind): torch-fidelity's pretrained Inception file when this machine has it,
    else a random state dict (He-normal convolutions, so features neither vanish nor blow
    up) with the same architecture and cost."""
    hub = Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE
    if hub.is_file():
        return str(hub), "pretrained"
    from unittest import mock

    import torch_fidelity.feature_extractor_inceptionv3 as fe

    # the constructor always loads weights: build the architecture without them
    with mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: {}), \
            mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict",
                              lambda self, *a, **k: None):
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in net.modules():
            if isinstance(mod, torch.nn.Conv2d | torch.nn.Linear):
                w = mod.weight
                w.copy_(torch.randn(w.shape, generator=gen) * math.sqrt(2.0 / w[0].numel()))
    path = tmp / "inception-random.pth"
    torch.save(net.state_dict(), path)
    return str(path), "random (pretrained weights not on this machine)"


def classifier_weights(tmp: Path, shape: tuple[int, ...], seed: int) -> tuple[str, str]:
    """A domain-classifier file with random weights, via lit_gen's own classifier module."""
    from lit_gen.nets.classifier import DomainClassifier, save_classifier

    torch.manual_seed(seed)
    net = DomainClassifier(shape, 10)
    path = tmp / "classifier-random.pt"
    save_classifier(path, net, "cnn", {}, data={"name": "synthetic"}, test_accuracy=None)
    return str(path), "random"


def fidelity_direct(fake_u8, real_u8, extractor: str, weights: str, layer: str, cache_root: str,
                    cache_name: str, device: torch.device, batch_size: int) -> float:
    """FID by `torch_fidelity.calculate_metrics` called directly: the reference for
    `lit_gen.metrics.evaluator.Evaluator.image_metrics` (`lit_gen_fid`)."""
    import torch_fidelity

    out = torch_fidelity.calculate_metrics(
        input1=UInt8Images(fake_u8, "generated"), input2=UInt8Images(real_u8, "real"), fid=True,
        feature_extractor=extractor, feature_extractor_weights_path=weights,
        feature_layer_fid=layer, cache=True, cache_root=cache_root, input2_cache_name=cache_name,
        cuda=device.type == "cuda", batch_size=batch_size, verbose=False, save_cpu_ram=True)
    return float(out[torch_fidelity.KEY_METRIC_FID])


def lit_gen_fid(s: Settings, dm, extractor: str, weights: str, cache_dir: str,
                device: torch.device) -> Callable[[torch.Tensor], float]:
    """A function samples -> FID through lit_gen's own metric code (one evaluator, as the
    training callback keeps one): the counterpart of `fidelity_direct`."""
    from lit_gen import validation
    from lit_gen.metrics.evaluator import Evaluator

    overrides = ["metrics.names=[fid]", f"metrics.num_samples={s.fid_n}",
                 f"metrics.batch_size={s.fid_batch_size}", f"metrics.cache_dir={cache_dir}",
                 "data.name=synthetic"]
    if extractor == "inception":
        overrides += ["metrics.feature_extractor=inception-v3-compat",
                      f"metrics.inception_weights={weights}"]
    else:
        overrides += ["metrics.feature_extractor=classifier", f"metrics.classifier_ckpt={weights}"]
    cfg = validation.load([], overrides)
    evaluator = Evaluator(cfg.metrics, dm, seed=s.seed)

    def fid(samples: torch.Tensor) -> float:
        values, _ = evaluator.image_metrics(samples, device)
        return float(values["fid"])

    return fid


def bench_fid(s: Settings, device: torch.device, log: Callable) -> list[dict]:
    from lit_gen import validation
    from lit_gen.models import build_model

    rows = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        cfg = validation.load([str(ROOT / "conf" / "model" / "dcgan.yaml")], [
            "data.name=synthetic", "data.image_size=28", "data.channels=1",
            f"data.n_samples={s.fid_real}", "data.val_fraction=0.0", f"seed={s.seed}"])
        dm = load_data(cfg)
        real_u8 = to_uint8_rgb(dm.x_train)
        model = build_model(cfg, dm.info().as_dict()).to(device)
        torch.manual_seed(s.seed)
        t = time.perf_counter()
        samples = torch.cat([model.sample(min(500, s.fid_n - i)).cpu()
                             for i in range(0, s.fid_n, 500)])
        gen_s = time.perf_counter() - t
        for extractor in s.extractors:
            row: dict[str, Any] = {"extractor": extractor, "n_generated": s.fid_n,
                                   "n_real": len(real_u8), "generate_s": round(gen_s, 3),
                                   "clock": s.clock}
            if extractor == "inception":
                weights, kind = inception_weights(tmp, s.seed)
                fidelity_name, layer = "inception-v3-compat", "2048"
            elif extractor == "classifier":
                weights, kind = classifier_weights(tmp, tuple(dm.info().shape), s.seed)
                from lit_gen.metrics.extractors import ClassifierExtractor

                fidelity_name, layer = ClassifierExtractor.fidelity_name, ClassifierExtractor.layers["fid"]
            else:
                raise ConfigError(f"--extractors: unknown '{extractor}'; valid: inception, classifier")
            row["weights"] = kind

            def direct(r: int, e=extractor, w=weights, f=fidelity_name, ly=layer):
                cache = str(tmp / f"cache-direct-{e}-{r}")  # fresh per repeat: first call misses
                return lambda x: fidelity_direct(to_uint8_rgb(x), real_u8, f, w, ly, cache,
                                                 f"bench-real-{e}", device, s.fid_batch_size)

            def through_lit_gen(r: int, e=extractor, w=weights):
                return lit_gen_fid(s, dm, e, w, str(tmp / f"cache-lit-{e}-{r}"), device)

            paths = {"torch_fidelity": direct, "lit_gen": through_lit_gen}
            for name, factory in paths.items():
                firsts, seconds, values = [], [], []
                m: dict = {}
                for r in range(s.fid_repeats):
                    fid_fn = factory(r)
                    with peak_memory(device, m):
                        t = clock_now(s.clock, device)
                        v1 = fid_fn(samples)
                        t1 = clock_now(s.clock, device)
                        v2 = fid_fn(samples)
                        t2 = clock_now(s.clock, device)
                    firsts.append(t1 - t)
                    seconds.append(t2 - t1)
                    values += [v1, v2]
                first, second = median(firsts), median(seconds)
                row[name] = {"first_s": round(first, 3), "second_s": round(second, 3),
                             "speedup": round(first / second, 3),
                             "images_per_s_first": round((s.fid_n + len(real_u8)) / first, 2),
                             "images_per_s_second": round(s.fid_n / second, 2),
                             "fid": values[0], "fid_second_equal": values[0] == values[1], **m}
                log(f"  fid/{extractor}/{name:<15} first {first:8.2f} s  second {second:8.2f} s "
                    f" x{first / second:.2f}")
            row["judged_path"] = "lit_gen"
            row["target"] = f"second call >= {FID_SPEEDUP_TARGET}x faster than the first"
            row["status"] = status(row["lit_gen"]["speedup"] >= FID_SPEEDUP_TARGET)
            row["lit_gen_vs_torch_fidelity_first"] = round(
                row["torch_fidelity"]["first_s"] / row["lit_gen"]["first_s"], 3)
            row["fid_equal"] = math.isclose(row["lit_gen"]["fid"], row["torch_fidelity"]["fid"],
                                            rel_tol=1e-6, abs_tol=1e-9)
            rows.append(row)
    return rows
