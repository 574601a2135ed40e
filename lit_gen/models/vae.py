"""VAE (Kingma & Welling 2014), beta-VAE (Higgins et al. 2017; Burgess et al. 2018) and CVAE
(Sohn et al. 2015), with ELBO and importance-weighted (IWAE) log-likelihood estimates."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from lit_gen.errors import ConfigError
from lit_gen.losses.vae import (
    LIKELIHOODS,
    gaussian_kl,
    gaussian_log_density,
    reparameterize,
    standard_normal_log_density,
)
from lit_gen.models import MODELS
from lit_gen.models.autoencoder import AutoEncoderModule, at_least_fp32
from lit_gen.models.base import tiny_config_over

Tensor = torch.Tensor


class VAEOutput(NamedTuple):
    """One pass x -> q(z|x) -> z -> decoder.

    recon (B, *data_shape): decoder output, the parameters of p(x|z) (logits for bernoulli,
    the mean for gaussian); mu, logvar (B, latent): q(z|x); z (B, latent): a sample of q.
    """

    recon: Tensor
    mu: Tensor
    logvar: Tensor
    z: Tensor


class ELBOTerms(NamedTuple):
    """Per-example terms in nats, each (B,): elbo = log_px - kl."""

    elbo: Tensor
    log_px: Tensor  # single-sample estimate of E_q[log p(x|z)]
    kl: Tensor  # KL(q(z|x) || N(0, I)), closed form


@MODELS.register("vae")
class VAE(AutoEncoderModule):
    """Variational autoencoder (Kingma & Welling 2014), optionally a beta-VAE.

    Gaussian encoder q(z|x) = N(mu, diag(exp(logvar))) (a discriminator net with
    out_dim = 2 * latent_dim), prior N(0, I), decoder p(x|z) chosen by `likelihood`:

    - `bernoulli`: for binarised data (data.binarize=true): x in {-1, 1} is mapped to
      {0, 1}; the decoder outputs logits (generator out_activation: none).
    - `gaussian`: for continuous data in [-1, 1]: the decoder outputs the mean, the std is
      `decoder_std` (fixed), or a learned scalar initialised there (`learn_std`).

    The loss is -E_q[log p(x|z)] + w * KL, with w = beta ramped linearly from 0 over the
    KL warm-up; with `capacity_max` set it is -E_q[log p(x|z)] + beta * |KL - C| with C ramped
    from 0 to capacity_max nats over `capacity_steps` (Burgess et al. 2018). beta=1, no
    warm-up, no capacity is the plain VAE. Logged ELBO / reconstruction / KL are the
    unweighted terms, in nats per example.

    Args:
        likelihood: bernoulli | gaussian (lit_gen.losses.vae.LIKELIHOODS).
        decoder_std: gaussian likelihood: the std of p(x|z) in [-1, 1] data units.
        learn_std: gaussian likelihood: learn one shared log-std (init log(decoder_std)).
        beta: weight of the KL term (Higgins et al. 2017), or gamma of the capacity loss.
        kl_warmup_steps / kl_warmup_epochs: linear KL-weight warm-up length (0: none; one
            of the two).
        capacity_max: C_max in nats (None: no capacity objective).
        capacity_steps: optimizer steps over which C grows linearly to capacity_max.
        g_optim: the one optimizer, over encoder, decoder (and learned std).
        binarize: whether the training data is binarised (`data.binarize`); the bernoulli
            likelihood needs it (None: not known, e.g. a model built by hand, not checked).
    """

    stochastic_encoder = True
    logged_terms = ("train/elbo", "train/recon", "train/kl", "train/kl_weight", "train/loss",
                    "val/elbo", "val/recon", "val/kl")
    # the bernoulli likelihood: binarised data, decoder logits
    tiny_config = tiny_config_over(
        AutoEncoderModule.tiny_config, data={"binarize": True},
        generator={"name": "mlp", "hidden": [32], "out_activation": "none"})

    def __init__(self, *, likelihood: str = "bernoulli", decoder_std: float = 0.1,
                 learn_std: bool = False, beta: float = 1.0, kl_warmup_steps: int = 0,
                 kl_warmup_epochs: float = 0.0, capacity_max: float | None = None,
                 capacity_steps: int = 0, g_optim: dict | None = None,
                 binarize: bool | None = None, **kwargs):
        super().__init__(**kwargs)
        self.likelihood = LIKELIHOODS.get(likelihood, "model.params.likelihood")
        check_vae_params(self, likelihood, decoder_std, learn_std, beta, kl_warmup_steps,
                         kl_warmup_epochs, capacity_max, capacity_steps, binarize)
        log_std = torch.tensor(math.log(decoder_std))
        if learn_std:
            self.log_std = nn.Parameter(log_std)
        else:
            self.register_buffer("log_std", log_std)

    # --- the model --------------------------------------------------------------------------
    def to_data_space(self, out: Tensor) -> Tensor:
        return self.likelihood.mean(out)

    def forward(self, x: Tensor, y: Tensor | None = None, net: nn.Module | None = None) -> VAEOutput:
        mu, logvar = self.posterior(x, y)
        z = reparameterize(mu, logvar)
        return VAEOutput(self.decoder_output(z, y, net), mu, logvar, z)

    def log_px(self, x: Tensor, recon: Tensor) -> Tensor:
        """log p(x|z) per example (B,) from the decoder output (at least fp32)."""
        return self.likelihood.log_prob(at_least_fp32(x.flatten(1)),
                                        at_least_fp32(recon.flatten(1)), self.log_std)

    def elbo_terms(self, x: Tensor, y: Tensor | None = None, net: nn.Module | None = None) -> ELBOTerms:
        out = self(x, y, net)
        log_px = self.log_px(x, out.recon)
        kl = gaussian_kl(out.mu, out.logvar)
        return ELBOTerms(log_px - kl, log_px, kl)

    # --- likelihood estimates (nats per example) ------------------------------------------
    @torch.no_grad()
    def elbo(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The ELBO of each example, (B,), in nats (single-sample reconstruction term, closed-
        form KL), in eval mode with the sampling (EMA when enabled) decoder.

        Args:
            x: (B, *data_shape) in [-1, 1] (binarised for the bernoulli likelihood).
            y: (B,) labels, used by conditional models.
        """
        with self.eval_mode():
            return self.elbo_terms(x, y if self.conditional else None, self.sampling_generator()).elbo

    @torch.no_grad()
    def iwae_log_likelihood(self, x: Tensor, y: Tensor | None = None, k: int = 5000,
                            chunk: int = 16384) -> Tensor:
        """Importance-weighted estimate of log p(x) (Burda et al. 2016), (B,), in nats:
        log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x), z_i ~ q(z|x), via logsumexp.

        A lower bound in expectation that increases with k towards log p(x); k=1 is an
        unbiased estimate of the ELBO. Runs in eval mode with the sampling decoder.

        Args:
            x: (B, *data_shape) in [-1, 1]; y: (B,) labels for conditional models.
            k: importance samples per example.
            chunk: at most this many decoder inputs per forward pass (memory bound);
                each pass draws max(1, chunk // B) samples for every example.
        """
        if k < 1 or chunk < 1:
            raise ValueError(f"k and chunk must be positive, got k={k}, chunk={chunk}")
        y = y if self.conditional else None
        with self.eval_mode():
            net = self.sampling_generator()
            mu, logvar = self.posterior(x, y)  # (B, L)
            n = len(x)
            per_pass = max(1, chunk // n)
            acc = torch.full((n,), -math.inf, dtype=mu.dtype, device=mu.device)
            done = 0
            while done < k:
                s = min(per_pass, k - done)
                z = mu + torch.exp(0.5 * logvar) * torch.randn(s, *mu.shape, dtype=mu.dtype, device=mu.device)
                xs = x.unsqueeze(0).expand(s, *x.shape).reshape(s * n, *x.shape[1:])
                ys = y.repeat(s) if y is not None else None
                recon = self.decoder_output(z.reshape(s * n, -1), ys, net)
                log_w = (self.log_px(xs, recon).view(s, n) + standard_normal_log_density(z)
                         - gaussian_log_density(z, mu, logvar))  # (s, B)
                acc = torch.logaddexp(acc, torch.logsumexp(log_w, dim=0))
                done += s
            return acc - math.log(k)

    # --- training -----------------------------------------------------------------------------
    def configure_optimizers(self):
        params = [p for name, p in self.named_parameters() if not name.startswith("generator_ema.")]
        return self.configure_from((params, self.hparams.g_optim, "model.g_optim"))

    def kl_weight(self, batch_idx: int) -> float:
        """beta times the warm-up ramp in [0, 1]."""
        hp = self.hparams
        if hp.kl_warmup_steps > 0:
            return hp.beta * min(1.0, self.g_steps / hp.kl_warmup_steps)
        if hp.kl_warmup_epochs > 0:
            progress = (self.current_epoch + batch_idx / self.epoch_batches()) / hp.kl_warmup_epochs
            return hp.beta * min(1.0, progress)
        return hp.beta

    def capacity(self) -> float:
        hp = self.hparams
        if hp.capacity_steps <= 0:
            return float(hp.capacity_max)
        return hp.capacity_max * min(1.0, self.g_steps / hp.capacity_steps)

    def train_batch(self, batch, batch_idx: int) -> None:
        x, y = self.batch(batch)
        terms = self.elbo_terms(x, y)
        recon, kl = -terms.log_px.mean(), terms.kl.mean()
        logs = {"elbo": terms.elbo.mean(), "recon": recon, "kl": kl}
        if self.hparams.capacity_max is not None:
            c = self.capacity()
            loss = recon + self.hparams.beta * (kl - c).abs()
            logs["capacity"] = c
        else:
            w = self.kl_weight(batch_idx)
            loss = recon + w * kl
            logs["kl_weight"] = w
        if self.hparams.learn_std:
            logs["decoder_std"] = self.log_std.detach().exp()
        logs["loss"] = loss
        self.step_optimizer(self.optimizers(), loss, "loss", logs)
        self.after_generator_step()
        self.log_step(logs, prog_bar=("elbo", "kl"))

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = self.batch(batch)
        terms = self.elbo_terms(x, y, self.sampling_generator())
        self.log_terms({"elbo": terms.elbo.mean(), "recon": -terms.log_px.mean(),
                        "kl": terms.kl.mean()}, prefix="val")


def check_vae_params(model: VAE, likelihood: str, decoder_std: float, learn_std: bool,
                     beta: float, kl_warmup_steps: int, kl_warmup_epochs: float,
                     capacity_max: float | None, capacity_steps: int,
                     binarize: bool | None) -> None:
    """Clear errors for option combinations that cannot work."""
    p = "model.params"
    if model.likelihood.needs_logits and model.generator_out_activation() not in ("none", None):
        raise ConfigError(f"{p}.likelihood={likelihood} needs decoder logits: set "
                          f"model.generator.out_activation=none (got "
                          f"'{model.generator_out_activation()}')")
    if model.likelihood.needs_logits and binarize is False:
        raise ConfigError(f"{p}.likelihood={likelihood} needs binarised data: set "
                          "data.binarize=true, or use model.params.likelihood=gaussian")
    if decoder_std <= 0:
        raise ConfigError(f"{p}.decoder_std must be positive, got {decoder_std}")
    if learn_std and likelihood != "gaussian":
        raise ConfigError(f"{p}.learn_std needs likelihood=gaussian (got {likelihood})")
    if beta < 0:
        raise ConfigError(f"{p}.beta must be >= 0, got {beta}")
    if kl_warmup_steps < 0 or kl_warmup_epochs < 0 or capacity_steps < 0:
        raise ConfigError(f"{p}: kl_warmup_steps, kl_warmup_epochs and capacity_steps must be >= 0")
    if kl_warmup_steps > 0 and kl_warmup_epochs > 0:
        raise ConfigError(f"{p}: give kl_warmup_steps or kl_warmup_epochs, not both")
    if capacity_max is None and capacity_steps > 0:
        raise ConfigError(f"{p}.capacity_steps needs {p}.capacity_max (C_max in nats)")
    if capacity_max is not None and (kl_warmup_steps > 0 or kl_warmup_epochs > 0):
        raise ConfigError(f"{p}: the capacity objective replaces KL warm-up; set "
                          "capacity_max=null or the warm-up to 0")
    if capacity_max is not None and capacity_max < 0:
        raise ConfigError(f"{p}.capacity_max must be >= 0 nats, got {capacity_max}")


@MODELS.register("cvae")
class CVAE(VAE):
    """Conditional VAE (Sohn et al. 2015): encoder q(z|x, y) and decoder p(x|z, y) take the
    one-hot label (the nets' `cond_dim`); the prior stays N(0, I), so `sample(n, labels)`
    draws z ~ N(0, I) and decodes it with the requested labels. Same Args as VAE."""

    conditional = True
