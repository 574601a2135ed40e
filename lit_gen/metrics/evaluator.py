"""One evaluation procedure for the training callback and `python -m lit_gen.evaluate`:
draw samples from the model (each rank its share), then compute the configured metrics and
the protocol that makes them comparable."""

from __future__ import annotations

import hashlib
from contextlib import nullcontext

import torch

from lit_gen.errors import ConfigError
from lit_gen.metrics import IMAGE_METRICS
from lit_gen.metrics.distributed import gather_and_compute, rank_and_world, share
from lit_gen.metrics.extractors import PreparedExtractor, prepare_extractor
from lit_gen.metrics.likelihood import likelihood_metrics, per_example_likelihood
from lit_gen.metrics.toy import toy_mode_metrics

Tensor = torch.Tensor


def mixed_seed(*parts) -> int:
    """A reproducible 32-bit seed from any parts (run seed, evaluation index, rank)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little")


@torch.no_grad()
def generate(model, n: int, rank: int = 0, world: int = 1, batch_size: int = 256) -> Tensor:
    """This rank's share of n samples via `model.sample` (the EMA generator when enabled),
    on the model's device. Conditional models get balanced labels: sample i has label
    i % num_classes, whatever the number of ranks."""
    idx = share(n, rank, world)
    out = []
    for start in range(idx.start, idx.stop, batch_size):
        stop = min(start + batch_size, idx.stop)
        labels = (torch.arange(start, stop) % model.num_classes) if model.conditional else None
        out.append(model.sample(stop - start, labels).float())
    if not out:
        return torch.empty((0, *model.data_shape), device=model.device)
    return torch.cat(out)


class Evaluator:
    """Computes `metrics.names` for a model or a set of samples.

    Args:
        m: the `metrics` config section.
        datamodule: the run's GenerativeDataModule (real images, toy modes, likelihood split).
        seed: the run seed (sampling seeds derive from it).
    """

    def __init__(self, m, datamodule, seed: int = 0):
        self.m = m
        self.dm = datamodule
        self.seed = seed
        self.names = list(m.names)
        self.image_names = [n for n in IMAGE_METRICS if n in self.names]
        self.extractor: PreparedExtractor | None = None
        self._real_cache: tuple[Tensor, str] | None = None

    @property
    def wants_samples(self) -> bool:
        return bool(self.image_names) or "toy" in self.names

    def num_generated(self) -> int:
        return self.m.toy_samples if "toy" in self.names else self.m.num_samples

    def prepare(self) -> None:
        """Resolve the feature extractor's weights (call once at start, on the rank that computes)."""
        if self.image_names and self.extractor is None:
            self.extractor = prepare_extractor(self.m)

    # --- what every rank produces ------------------------------------------------------
    def local_inputs(self, model, rank: int = 0, world: int = 1, tag: object = 0,
                     samples: bool = True) -> dict[str, Tensor]:
        """This rank's samples and per-example likelihoods, drawn under a seed fixed by
        (run seed, tag, rank) without disturbing the training RNG streams."""
        device = model.device
        devices = [device] if device.type == "cuda" else []
        out: dict[str, Tensor] = {}
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(mixed_seed(self.seed, "metrics", tag, rank))
            if samples and self.wants_samples:
                out["samples"] = generate(model, self.num_generated(), rank, world,
                                          self.m.batch_size)
            if "likelihood" in self.names:
                x, y = self.likelihood_data()
                idx = share(len(x), rank, world)
                values = per_example_likelihood(model, x[idx.start:idx.stop], y[idx.start:idx.stop],
                                                self.m.iwae_k, self.m.likelihood_batch_size)
                out.update({k: v.to(device) for k, v in values.items()})
        return out

    def likelihood_data(self) -> tuple[Tensor, Tensor]:
        x, y = self.dm.split(self.m.likelihood_split)
        if self.m.likelihood_limit is not None:
            x, y = x[: self.m.likelihood_limit], y[: self.m.likelihood_limit]
        return x, y

    # --- what rank 0 computes ----------------------------------------------------------
    def compute(self, inputs: dict[str, Tensor], device: str | torch.device = "cpu") -> tuple[dict, dict]:
        """(values, protocol) from gathered inputs: "samples" (N, ...) and/or per-example
        "elbo" / "iwae_ll" (M,)."""
        values: dict[str, float] = {}
        protocol: dict = {"dataset": self.dm.cfg.name, "metrics": list(self.names)}
        samples = inputs.get("samples")
        if samples is not None:
            samples = samples.detach().float().cpu()
            protocol["n_generated"] = len(samples)
        if self.image_names:
            if samples is None:
                raise ConfigError("image metrics need samples")
            v, p = self.image_metrics(samples, device)
            values.update(v)
            protocol.update(p, real_split=self.m.real_split)
        if "toy" in self.names:
            if samples is None:
                raise ConfigError("toy metrics need samples")
            values.update(toy_mode_metrics(samples, self.dm.modes(), self.dm.mode_std))
            protocol["toy"] = {"n_generated": len(samples), "modes": len(self.dm.modes()),
                               "mode_std": self.dm.mode_std, "high_quality_within_std": 3.0}
        if "likelihood" in self.names:
            values.update(likelihood_metrics(inputs))
            protocol["likelihood"] = {"split": self.m.likelihood_split,
                                      "n_examples": len(inputs["elbo"]), "iwae_k": self.m.iwae_k,
                                      "unit": "nats per example"}
        return values, protocol

    def real_images(self) -> tuple[Tensor, str]:
        """The real split as uint8 and its torch-fidelity cache name (computed once)."""
        from lit_gen.metrics.fidelity import real_cache_name, to_uint8_rgb

        if self._real_cache is None:
            x, _ = self.dm.split(self.m.real_split)
            real = to_uint8_rgb(x)
            self._real_cache = (real, real_cache_name(self.dm.cfg.name, self.m.real_split, real,
                                                      self.extractor))
        return self._real_cache

    def image_metrics(self, samples: Tensor, device) -> tuple[dict, dict]:
        from lit_gen.metrics.fidelity import FidelityOptions, fidelity_metrics

        self.prepare()
        real, cache_name = self.real_images()
        opts = FidelityOptions(batch_size=self.m.batch_size, cache_dir=self.m.cache_dir,
                               isc_splits=self.m.isc_splits, kid_subsets=self.m.kid_subsets,
                               kid_subset_size=self.m.kid_subset_size,
                               prc_neighborhood=self.m.prc_neighborhood)
        return fidelity_metrics(samples, real, self.image_names, self.extractor, opts,
                                cache_name=cache_name, device=device)

    # --- both ------------------------------------------------------------------------------
    def evaluate_model(self, model, tag: object = 0, samples: Tensor | None = None) -> tuple[dict, dict]:
        """Every rank calls this: local share -> gather -> rank 0 computes -> broadcast.
        `samples` (N, ...) replaces drawing from the model (`lit_gen.evaluate --samples`)."""
        rank, world = rank_and_world()
        local = self.local_inputs(model, rank, world, tag, samples=samples is None)
        if samples is not None:
            idx = share(len(samples), rank, world)
            local["samples"] = samples[idx.start:idx.stop].to(model.device)
        device = model.device if model.device.type == "cuda" else "cpu"
        ctx = torch.cuda.device(model.device) if model.device.type == "cuda" else nullcontext()
        with ctx:
            return gather_and_compute(local, lambda inputs: self.compute(inputs, device))
