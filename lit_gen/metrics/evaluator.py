"""One evaluation procedure for the training callback and `python -m lit_gen.evaluate`:
draw samples from the model (each rank its share), then compute the configured metrics and
the protocol that makes them comparable."""

from __future__ import annotations

import hashlib
from contextlib import nullcontext

import torch

from lit_gen.data.binarize import binarization_of, dynamic_binarize
from lit_gen.errors import ConfigError
from lit_gen.metrics import IMAGE_METRICS
from lit_gen.metrics.distributed import gather_and_compute, rank_and_world, share
from lit_gen.metrics.extractors import PreparedExtractor, prepare_extractor
from lit_gen.metrics.latent_samplers import sample_with
from lit_gen.metrics.likelihood import likelihood_metrics, per_example_likelihood
from lit_gen.metrics.toy import toy_mode_metrics

Tensor = torch.Tensor


@torch.no_grad()
def reconstruct(model, x: Tensor, y: Tensor | None, batch_size: int = 256) -> Tensor:
    """decode(encode_mean(x)) in eval mode, on the model's device, (N, *data_shape)."""
    device = model.device
    use_y = getattr(model, "conditional", False)
    out = []
    with model.eval_mode():
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size].to(device)
            yb = y[start:start + batch_size].to(device) if use_y else None
            out.append(model.decode(model.encode_mean(xb, yb), yb).float())
    if not out:
        return torch.empty((0, *model.data_shape), device=device)
    return torch.cat(out)


def mixed_seed(*parts) -> int:
    """A reproducible 32-bit seed from any parts (run seed, evaluation index, rank)."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "little")


@torch.no_grad()
def generate(model, n: int, rank: int = 0, world: int = 1, batch_size: int = 256,
             latent_sampler=None) -> Tensor:
    """This rank's share of n samples via `model.sample` (the EMA generator when enabled),
    or decoded from an ex-post `latent_sampler`'s codes, on the model's device. Conditional
    models get balanced labels: sample i has label i % num_classes, whatever the number of
    ranks."""
    idx = share(n, rank, world)
    out = []
    for start in range(idx.start, idx.stop, batch_size):
        stop = min(start + batch_size, idx.stop)
        labels = (torch.arange(start, stop) % model.num_classes) if model.conditional else None
        if latent_sampler is None:
            out.append(model.sample(stop - start, labels).float())
        else:
            out.append(sample_with(model, latent_sampler, stop - start, labels).float())
    if not out:
        return torch.empty((0, *model.data_shape), device=model.device)
    return torch.cat(out)


class Evaluator:
    """Computes `metrics.names` for a model or a set of samples.

    Args:
        m: the `metrics` config section.
        datamodule: the run's GenerativeDataModule (real images, toy modes, likelihood split).
        seed: the run seed (sampling seeds derive from it).
        latent_sampler: autoencoders: an ex-post sampler (`lit_gen.metrics.latent_samplers`)
            the samples are decoded from, with `latent_sampler_protocol` describing it
            (None: the model's prior).
    """

    def __init__(self, m, datamodule, seed: int = 0, latent_sampler=None,
                 latent_sampler_protocol: dict | None = None):
        self.m = m
        self.dm = datamodule
        self.seed = seed
        self.names = list(m.names)
        self.image_names = [n for n in IMAGE_METRICS if n in self.names]
        self.extractor: PreparedExtractor | None = None
        self._real_cache: dict[str, tuple[Tensor, str]] = {}
        self.latent_sampler = latent_sampler
        self.latent_sampler_protocol = latent_sampler_protocol or {"latent_sampler": "prior"}

    @property
    def wants_samples(self) -> bool:
        return bool(self.image_names) or "toy" in self.names

    @property
    def needs_extractor(self) -> bool:
        return bool(self.image_names) or "recon_fid" in self.names

    def num_generated(self) -> int:
        return self.m.toy_samples if "toy" in self.names else self.m.num_samples

    def prepare(self) -> None:
        """Resolve the feature extractor's weights (call once at start, on the rank that computes)."""
        if self.needs_extractor and self.extractor is None:
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
                                          self.m.batch_size, self.latent_sampler)
            if "recon_fid" in self.names:
                x, y = self.dm.split(self.m.recon_split)
                idx = share(len(x), rank, world)
                out["recon"] = reconstruct(model, x[idx.start:idx.stop], y[idx.start:idx.stop],
                                           self.m.batch_size)
            if "likelihood" in self.names:
                x, y = self.likelihood_data()
                idx = share(len(x), rank, world)
                values = per_example_likelihood(model, x[idx.start:idx.stop], y[idx.start:idx.stop],
                                                self.m.iwae_k, self.m.likelihood_batch_size)
                out.update({k: v.to(device) for k, v in values.items()})
        return out

    def likelihood_data(self) -> tuple[Tensor, Tensor]:
        """The likelihood split; under dynamic binarization re-drawn at every evaluation
        (seeded by the evaluation's RNG, so the same tag gives the same draw)."""
        x, y = self.dm.split(self.m.likelihood_split)
        if self.m.likelihood_limit is not None:
            x, y = x[: self.m.likelihood_limit], y[: self.m.likelihood_limit]
        if self.binarization == "dynamic":
            x = dynamic_binarize(x)
        return x, y

    @property
    def binarization(self) -> str:
        return binarization_of(self.dm.cfg)

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
            protocol.update(p, real_split=self.m.real_split, **self.latent_sampler_protocol)
            if "memorization" in self.names:
                protocol["memorization"]["split"] = self.m.memorization_split
        if "recon_fid" in self.names:
            v, p = self.recon_metrics(inputs["recon"].detach().float().cpu(), device)
            values.update(v)
            protocol["recon_fid"] = p
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
                                      "binarization": self.binarization,
                                      "unit": "nats per example"}
        return values, protocol

    def real_images(self, split: str | None = None) -> tuple[Tensor, str]:
        """A real split as uint8 and its torch-fidelity cache name (computed once per split)."""
        from lit_gen.metrics.fidelity import real_cache_name, to_uint8_rgb

        split = split or self.m.real_split
        if split not in self._real_cache:
            x, _ = self.dm.split(split)
            real = to_uint8_rgb(x)
            self._real_cache[split] = (real, real_cache_name(self.dm.cfg.name, split, real,
                                                             self.extractor))
        return self._real_cache[split]

    def fidelity_options(self):
        from lit_gen.metrics.fidelity import FeatureMetricOptions, FidelityOptions

        m = self.m
        opts = FidelityOptions(batch_size=m.batch_size, cache_dir=m.cache_dir,
                               isc_splits=m.isc_splits, kid_subsets=m.kid_subsets,
                               kid_subset_size=m.kid_subset_size,
                               prc_neighborhood=m.prc_neighborhood)
        feature_opts = FeatureMetricOptions(
            dc_neighborhood=m.dc_neighborhood, memorization_cells=m.memorization_cells,
            memorization_min_cell=m.memorization_min_cell, fd_inf_points=m.fd_inf_points,
            fd_inf_min_samples=m.fd_inf_min_samples, class_min_share=m.class_min_share,
            seed=self.seed)
        return opts, feature_opts

    def image_metrics(self, samples: Tensor, device) -> tuple[dict, dict]:
        from lit_gen.metrics.fidelity import fidelity_metrics

        self.prepare()
        real, cache_name = self.real_images()
        heldout, heldout_name = (self.real_images(self.m.memorization_split)
                                 if "memorization" in self.names else (None, None))
        opts, feature_opts = self.fidelity_options()
        return fidelity_metrics(samples, real, self.image_names, self.extractor, opts,
                                cache_name=cache_name, device=device, heldout=heldout,
                                heldout_cache_name=heldout_name, feature_options=feature_opts)

    def recon_metrics(self, recon: Tensor, device) -> tuple[dict, dict]:
        """FID of the reconstructions of the `recon_split` images against those images."""
        from lit_gen.metrics.fidelity import fidelity_metrics

        self.prepare()
        real, cache_name = self.real_images(self.m.recon_split)
        opts, _ = self.fidelity_options()
        v, p = fidelity_metrics(recon, real, ["fid"], self.extractor, opts, cache_name=cache_name,
                                device=device)
        return {"recon_fid": v["fid"]}, {"split": self.m.recon_split, "n": len(recon),
                                         "against": f"the {self.m.recon_split} images encoded",
                                         "code": "posterior mean (encode_mean)",
                                         "feature_extractor_sha256": p["feature_extractor_sha256"]}

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
