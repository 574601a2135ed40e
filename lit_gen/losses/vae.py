"""Pure loss terms of the VAE family: log-densities, Gaussian KL, reconstruction costs, IMQ MMD.

Conventions: every density / KL function sums over the LAST dimension and keeps the leading
ones (flatten images to (B, D) first), and returns values in nats.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F

from lit_gen.registry import Registry

Tensor = torch.Tensor
LOG_2PI = math.log(2.0 * math.pi)
#: Tolstikhin et al. 2018 (official code): the IMQ kernel is summed over these multiples of C
WAE_MMD_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


# --- densities and divergences ----------------------------------------------------------------
def gaussian_log_density(x: Tensor, mean: Tensor, logvar: Tensor | float) -> Tensor:
    """log N(x; mean, diag(exp(logvar))), summed over the last dim: (..., D) -> (...)."""
    inv_var = torch.exp(-logvar) if isinstance(logvar, Tensor) else math.exp(-logvar)
    return -0.5 * (LOG_2PI + logvar + (x - mean).pow(2) * inv_var).sum(-1)


def standard_normal_log_density(z: Tensor) -> Tensor:
    """log N(z; 0, I), summed over the last dim."""
    return -0.5 * (LOG_2PI + z.pow(2)).sum(-1)


def bernoulli_log_likelihood(logits: Tensor, target: Tensor) -> Tensor:
    """log Bernoulli(target; sigmoid(logits)) summed over the last dim; target in [0, 1]
    ({0, 1} for a normalised probability; other values give the cross-entropy)."""
    return -F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(-1)


def gaussian_kl(mu: Tensor, logvar: Tensor, prior_mu: Tensor | float = 0.0,
                prior_logvar: Tensor | float = 0.0) -> Tensor:
    """KL(N(mu, exp(logvar)) || N(prior_mu, exp(prior_logvar))) of diagonal Gaussians,
    summed over the last dim; the default prior is N(0, I)."""
    # Python floats stay scalars: torch.as_tensor(float, device=cuda) copies to the GPU
    inv_prior_var = (torch.exp(-prior_logvar) if isinstance(prior_logvar, Tensor)
                     else math.exp(-prior_logvar))
    return 0.5 * (prior_logvar - logvar - 1.0
                  + (torch.exp(logvar) + (mu - prior_mu).pow(2)) * inv_prior_var).sum(-1)


def reparameterize(mu: Tensor, logvar: Tensor) -> Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I) (Kingma & Welling 2014)."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


# --- decoder likelihoods p(x|z), by name (model.params.likelihood) ----------------------------
class DecoderLikelihood(NamedTuple):
    """How a decoder output parameterises p(x|z).

    log_prob(x, out, log_std) -> (B,): x (B, D) data in [-1, 1], out (B, D) decoder output.
    mean(out) -> the mean of p(x|z) in data space [-1, 1] (what `sample()` returns).
    """

    log_prob: Callable[[Tensor, Tensor, Tensor], Tensor]
    mean: Callable[[Tensor], Tensor]
    #: the decoder must output unbounded logits (out_activation none)
    needs_logits: bool


LIKELIHOODS: Registry[DecoderLikelihood] = Registry("likelihood")
# Binarised data {-1, 1} -> {0, 1}; the decoder outputs logits.
LIKELIHOODS.add("bernoulli", DecoderLikelihood(
    log_prob=lambda x, out, log_std: bernoulli_log_likelihood(out, (x + 1.0) * 0.5),
    mean=lambda out: torch.sigmoid(out) * 2.0 - 1.0,
    needs_logits=True))
# Continuous data in [-1, 1]; the decoder outputs the mean, std = exp(log_std) (scalar).
LIKELIHOODS.add("gaussian", DecoderLikelihood(
    log_prob=lambda x, out, log_std: gaussian_log_density(x, out, 2.0 * log_std),
    mean=lambda out: out,
    needs_logits=False))


# --- reconstruction costs c(x, y) of WAE / AAE, by name (model.params.recon_cost) ------------
RECON_COSTS: Registry[Callable[[Tensor, Tensor], Tensor]] = Registry("reconstruction cost")
# Tolstikhin et al. 2018: c(x, y) = ||x - y||_2^2, per example
RECON_COSTS.add("l2sq", lambda x, y: (x - y).pow(2).flatten(1).sum(1))
RECON_COSTS.add("l1", lambda x, y: (x - y).abs().flatten(1).sum(1))


# --- MMD with the inverse multiquadratic kernel ---------------------------------------------
def squared_distances(x: Tensor, y: Tensor) -> Tensor:
    """||x_i - y_j||^2, (N, D) x (M, D) -> (N, M) (no sqrt: safe gradients at 0)."""
    d = x.pow(2).sum(1, keepdim=True) - 2.0 * x @ y.T + y.pow(2).sum(1)
    return d.clamp_min(0.0)


def imq_kernel(x: Tensor, y: Tensor, scale: float) -> Tensor:
    """Inverse multiquadratic kernel k(x, y) = C / (C + ||x - y||^2), (N, M); C = scale."""
    return scale / (scale + squared_distances(x, y))


def mmd(kxx: Tensor, kyy: Tensor, kxy: Tensor, unbiased: bool = True) -> Tensor:
    """MMD^2 from kernel matrices (Gretton et al. 2012).

    unbiased=True: the U-statistic. For equal sizes (n = m) it is Lemma 6's paired form,
    1/(n(n-1)) sum_{i != j} [k(x_i,x_j) + k(y_i,y_j) - k(x_i,y_j) - k(x_j,y_i)], so identical
    sets give exactly 0; for n != m it is eq. (3) (off-diagonal within-set means, full cross
    mean). unbiased=False: the biased V-statistic (all means over full matrices; also 0 for
    identical sets, always >= 0).
    """
    n, m = kxx.shape[0], kyy.shape[0]
    if not unbiased:
        return kxx.mean() + kyy.mean() - 2.0 * kxy.mean()
    if n < 2 or m < 2:
        raise ValueError("the unbiased MMD needs at least 2 points per set")

    def off_diagonal_sum(k: Tensor) -> Tensor:
        return k.sum() - torch.diagonal(k).sum()

    if n == m:
        total = off_diagonal_sum(kxx) + off_diagonal_sum(kyy) - 2.0 * off_diagonal_sum(kxy)
        return total / (n * (n - 1))
    return (off_diagonal_sum(kxx) / (n * (n - 1)) + off_diagonal_sum(kyy) / (m * (m - 1))
            - 2.0 * kxy.mean())


def imq_mmd(x: Tensor, y: Tensor, prior_var: float = 1.0,
            scales: Sequence[float] = WAE_MMD_SCALES, unbiased: bool = True) -> Tensor:
    """MMD^2 between samples x (N, d) and y (M, d) with the IMQ kernel summed over
    C = s * 2 * d * prior_var for s in `scales` (WAE-MMD, Tolstikhin et al. 2018)."""
    base = 2.0 * x.shape[1] * prior_var
    total = x.new_zeros(())
    for s in scales:
        c = base * s
        total = total + mmd(imq_kernel(x, x, c), imq_kernel(y, y, c), imq_kernel(x, y, c), unbiased)
    return total


__all__ = ["LIKELIHOODS", "RECON_COSTS", "DecoderLikelihood", "bernoulli_log_likelihood",
           "gaussian_kl", "gaussian_log_density", "imq_kernel", "imq_mmd", "mmd",
           "reparameterize", "squared_distances", "standard_normal_log_density"]
