"""Ex-post latent samplers for autoencoders (`metrics.latent_sampler`, `lit_gen.sample
--latent-sampler`): instead of the N(0, I) prior, latent codes are drawn from a density
fitted after training on the aggregated posterior (the codes of the training images).

- `prior`: z ~ N(0, I), what `model.sample` does (nothing fitted);
- `gmm`: a Gaussian mixture with full covariances (Ghosh et al. 2020, "From Variational to
  Deterministic Autoencoders", ex-post density estimation), fitted by EM (scikit-learn);
- `two_stage`: the 2-stage VAE of Dai & Wipf 2019 ("Diagnosing and Enhancing VAE Models"):
  a second small VAE trained on the codes, with a learned decoder variance gamma; codes are
  its samples (decoder mean of u ~ N(0, I) plus N(0, gamma) noise; gamma -> 0 as it fits).

A fitted sampler is a plain dict of tensors and numbers (`state()`), saved next to the
checkpoint as `<ckpt>.<sampler>.pt` (or at `metrics.latent_sampler_file`) together with the
checkpoint's sha256, and read back with `torch.load(weights_only=True)`: a file fitted for
another checkpoint is refitted, never reused.
"""

from __future__ import annotations

import math
import os
import pickle
import tempfile
import zipfile
from pathlib import Path

import torch
from torch import nn

from lit_gen.data.binarize import binarization_of, dynamic_binarize
from lit_gen.errors import CheckpointError, ConfigError
from lit_gen.metrics.extractors import file_sha256
from lit_gen.registry import Registry

Tensor = torch.Tensor

LATENT_SAMPLERS: Registry = Registry("latent sampler")


@LATENT_SAMPLERS.register("prior")
class PriorSampler:
    """z ~ N(0, I) (the model's own prior); nothing to fit or store."""

    fitted = True

    def __init__(self, latent_dim: int | None = None):
        self.latent_dim = latent_dim

    def fit(self, codes: Tensor, seed: int = 0) -> PriorSampler:
        self.latent_dim = codes.shape[1]
        return self

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, self.latent_dim, generator=generator, dtype=torch.float64).float()

    def state(self) -> dict:
        return {"latent_dim": self.latent_dim}

    @classmethod
    def from_state(cls, state: dict) -> PriorSampler:
        return cls(int(state["latent_dim"]))


@LATENT_SAMPLERS.register("gmm")
class GMMSampler:
    """A Gaussian mixture density of the codes, (K,) weights, (K, D) means, (K, D, D)
    covariances; samples z = mu_k + L_k eps with k ~ Categorical(weights).

    Args:
        components: mixture components K (10, as Ghosh et al. use on MNIST).
    """

    def __init__(self, components: int = 10):
        self.components = components
        self.weights = self.means = self.chol = None

    def fit(self, codes: Tensor, seed: int = 0) -> GMMSampler:
        from sklearn.mixture import GaussianMixture

        x = codes.detach().double().cpu().numpy()
        k = min(self.components, len(x))
        gm = GaussianMixture(n_components=k, covariance_type="full", random_state=seed,
                             reg_covar=1e-6, max_iter=200).fit(x)
        self.weights = torch.from_numpy(gm.weights_)
        self.means = torch.from_numpy(gm.means_)
        self.chol = torch.linalg.cholesky(torch.from_numpy(gm.covariances_))
        return self

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)  # (n,)
        eps = torch.randn(n, self.means.shape[1], generator=generator, dtype=torch.float64)
        z = self.means[k] + (self.chol[k] @ eps[:, :, None])[:, :, 0]
        return z.float()

    def state(self) -> dict:
        return {"components": self.components, "weights": self.weights, "means": self.means,
                "chol": self.chol}

    @classmethod
    def from_state(cls, state: dict) -> GMMSampler:
        s = cls(int(state["components"]))
        s.weights, s.means, s.chol = (state[k].double() for k in ("weights", "means", "chol"))
        return s


class _SecondStageVAE(nn.Module):
    """Dai & Wipf's second stage: MLP encoder/decoder on codes, Gaussian decoder with one
    learned log-std (log gamma / 2) shared by all dimensions."""

    def __init__(self, dim: int, hidden: int, latent: int):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.ReLU(), nn.Linear(hidden, 2 * latent))
        self.dec = nn.Sequential(nn.Linear(latent, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.ReLU(), nn.Linear(hidden, dim))
        self.log_gamma = nn.Parameter(torch.zeros(()))

    def loss(self, z: Tensor) -> Tensor:
        mu, logvar = self.enc(z).chunk(2, dim=1)
        u = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        rec = self.dec(u)
        d = z.shape[1]
        nll = 0.5 * (((z - rec) ** 2).sum(1) / self.log_gamma.exp()
                     + d * (self.log_gamma + math.log(2 * math.pi)))
        kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1)
        return (nll + kl).mean()


@LATENT_SAMPLERS.register("two_stage")
class TwoStageSampler:
    """The 2-stage VAE (Dai & Wipf 2019): a second VAE fitted on the (standardised) codes.

    Args:
        hidden: width of its MLPs; latent: its latent size (None: the codes' size).
        steps: Adam steps (lr 1e-3, batch 256) on the codes.
    """

    def __init__(self, hidden: int = 256, latent: int | None = None, steps: int = 3000):
        self.hidden, self.latent, self.steps = hidden, latent, steps
        self.net: _SecondStageVAE | None = None
        self.shift = self.scale = None

    def fit(self, codes: Tensor, seed: int = 0) -> TwoStageSampler:
        z = codes.detach().float().cpu()
        self.shift, self.scale = z.mean(0), z.std(0).clamp_min(1e-6)
        z = (z - self.shift) / self.scale
        self.latent = self.latent or z.shape[1]
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.net = _SecondStageVAE(z.shape[1], self.hidden, self.latent)
            opt = torch.optim.Adam(self.net.parameters(), lr=1e-3)
            g = torch.Generator().manual_seed(seed)
            for _ in range(self.steps):
                batch = z[torch.randint(len(z), (min(256, len(z)),), generator=g)]
                opt.zero_grad(set_to_none=True)
                self.net.loss(batch).backward()
                opt.step()
        self.net.eval()
        return self

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        u = torch.randn(n, self.latent, generator=generator)
        # the second stage's own density: decoder mean plus its learned N(0, gamma) noise
        noise = torch.randn(n, self.shift.numel(), generator=generator)
        z = self.net.dec(u) + (0.5 * self.net.log_gamma).exp() * noise
        return z * self.scale + self.shift

    def state(self) -> dict:
        return {"hidden": self.hidden, "latent": self.latent, "steps": self.steps,
                "dim": int(self.shift.numel()), "shift": self.shift, "scale": self.scale,
                "net": self.net.state_dict()}

    @classmethod
    def from_state(cls, state: dict) -> TwoStageSampler:
        s = cls(int(state["hidden"]), int(state["latent"]), int(state["steps"]))
        s.net = _SecondStageVAE(int(state["dim"]), s.hidden, s.latent)
        s.net.load_state_dict(state["net"])
        s.net.eval()
        s.shift, s.scale = state["shift"], state["scale"]
        return s


@torch.no_grad()
def aggregated_posterior(model, x: Tensor, y: Tensor | None = None, batch_size: int = 256,
                         seed: int = 0) -> Tensor:
    """Codes of the images x: z ~ q(z|x) for stochastic encoders (a sample of the aggregated
    posterior), E(x) for deterministic ones; (N, latent_dim) on the CPU."""
    device = next(model.parameters()).device
    use_y = y is not None and getattr(model, "conditional", False)
    g = torch.Generator().manual_seed(seed)
    out = []
    with model.eval_mode():
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size].to(device)
            yb = y[start:start + batch_size].to(device) if use_y else None
            if model.stochastic_encoder:
                mu, logvar = model.posterior(xb, yb)
                eps = torch.randn(mu.shape, generator=g).to(device)
                out.append((mu + (0.5 * logvar).exp() * eps).float().cpu())
            else:
                out.append(model.encode_mean(xb, yb).float().cpu())
    return torch.cat(out)


def sampler_path(ckpt: str | Path, name: str, file: str | None = None) -> Path:
    return Path(file) if file is not None else Path(f"{ckpt}.{name}.pt")


def save_sampler(sampler, name: str, path: Path, ckpt_sha256: str | None, n_codes: int) -> None:
    """Write the sampler file atomically (a temporary file in the same folder, replaced)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"sampler": name, "state": sampler.state(), "checkpoint_sha256": ckpt_sha256,
                        "n_codes": n_codes}, f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_sampler(path: Path) -> dict:
    """A sampler file, loaded safely (weights_only: plain tensors and containers only)."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, zipfile.BadZipFile,
            ValueError) as err:
        raise CheckpointError(f"cannot read latent sampler {path} ({type(err).__name__}); delete "
                              "it to refit the sampler") from None
    if not isinstance(data, dict) or "sampler" not in data or "state" not in data:
        raise CheckpointError(f"{path} is not a lit_gen latent sampler file; delete it to refit")
    return data


def prepare_latent_sampler(model, name: str, ckpt: str | Path | None, datamodule, *,
                           file: str | None = None, seed: int = 0, split: str = "train"):
    """The sampler `name` for `model`: read from its file when that was fitted for this
    checkpoint, else fitted on the codes of the `split` images (and saved when a checkpoint
    or file is given). Returns (sampler, protocol entries)."""
    cls = LATENT_SAMPLERS.get(name, "metrics.latent_sampler")
    if name == "prior":
        return cls(model.latent_dim), {"latent_sampler": "prior"}
    if not callable(getattr(model, "encode_mean", None)):
        raise ConfigError(f"latent sampler '{name}' needs an autoencoder; this model has no encoder")
    ckpt_sha = file_sha256(ckpt) if ckpt is not None else None
    path = sampler_path(ckpt, name, file) if (ckpt is not None or file is not None) else None
    if path is not None and path.is_file():
        data = read_sampler(path)
        if data["sampler"] == name and (ckpt_sha is None or data["checkpoint_sha256"] == ckpt_sha):
            return cls.from_state(data["state"]), {
                "latent_sampler": name, "latent_sampler_file": str(path),
                "latent_sampler_fitted_on": data["n_codes"]}
    x, y = datamodule.split(split)
    if binarization_of(datamodule.cfg) == "dynamic":  # the images the model was trained on
        x = dynamic_binarize(x, torch.Generator().manual_seed(seed))
    codes = aggregated_posterior(model, x, y, seed=seed)
    sampler = cls().fit(codes, seed=seed)
    proto = {"latent_sampler": name, "latent_sampler_fitted_on": len(codes),
             "latent_sampler_split": split}
    if path is not None:
        save_sampler(sampler, name, path, ckpt_sha, len(codes))
        proto["latent_sampler_file"] = str(path)
    return sampler, proto


@torch.no_grad()
def sample_with(model, sampler, n: int, labels: Tensor | None = None,
                generator: torch.Generator | None = None) -> Tensor:
    """n samples in data space decoded from the sampler's codes, in eval mode."""
    z = sampler.sample(n, generator=generator).to(model.device)
    if model.conditional and labels is None:
        labels = model.sample_labels(n)
    with model.eval_mode():
        return model.decode(z, labels.to(model.device) if model.conditional else None)
