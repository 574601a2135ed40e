"""Likelihood glue, checked on a linear-Gaussian VAE whose log p(x) is known in closed form."""

from __future__ import annotations

import math
from types import SimpleNamespace

import lightning as L
import pytest
import torch

from lit_gen.metrics.evaluator import Evaluator
from lit_gen.metrics.likelihood import (
    likelihood_metrics,
    per_example_likelihood,
    supports_likelihood,
)

D, LATENT = 4, 2


class LinearGaussianVAE(L.LightningModule):
    """p(z) = N(0, I), p(x|z) = N(W z + b, s^2 I), q(z|x) = N(A x + c, diag(v)).

    log p(x) = log N(x; b, W W^T + s^2 I) exactly; q is deliberately not the posterior, so
    ELBO < IWAE(k) < log p(x), with IWAE(k) -> log p(x) as k grows (Burda et al. 2016).
    """

    conditional = False

    def __init__(self, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.W = torch.nn.Parameter(torch.randn(D, LATENT, generator=g, dtype=torch.float64))
        self.b = torch.nn.Parameter(torch.randn(D, generator=g, dtype=torch.float64))
        self.log_s = math.log(0.7)
        # an amortised q near (but not at) the true posterior
        cov = self.W.detach() @ self.W.detach().T + math.exp(2 * self.log_s) * torch.eye(D, dtype=torch.float64)
        post_gain = self.W.detach().T @ torch.linalg.inv(cov)  # E[z|x] = W^T C^-1 (x - b)
        self.A = 0.8 * post_gain
        self.c = -0.8 * post_gain @ self.b.detach()
        self.log_v = torch.full((LATENT,), math.log(0.3), dtype=torch.float64)

    def marginal(self) -> torch.distributions.MultivariateNormal:
        s2 = math.exp(2 * self.log_s)
        return torch.distributions.MultivariateNormal(
            self.b, self.W @ self.W.T + s2 * torch.eye(D, dtype=torch.float64))

    def log_px(self, x):
        return self.marginal().log_prob(x.double())

    def elbo(self, x, y=None):
        """Closed form: E_q[log p(x|z)] - KL(q || p(z)), (B,)."""
        x = x.double()
        m = x @ self.A.T + self.c  # (B, L)
        v = self.log_v.exp()
        s2 = math.exp(2 * self.log_s)
        resid = x - m @ self.W.T - self.b
        e_loglik = (-0.5 * D * math.log(2 * math.pi * s2)
                    - 0.5 / s2 * ((resid ** 2).sum(1) + (self.W ** 2 * v).sum()))
        kl = 0.5 * (v + m ** 2 - 1 - self.log_v).sum(1)
        return e_loglik - kl

    def iwae_log_likelihood(self, x, y=None, k: int = 1):
        """Monte Carlo IWAE bound log (1/k) sum_i p(x, z_i) / q(z_i | x), (B,)."""
        x = x.double()
        m = x @ self.A.T + self.c
        sd = (0.5 * self.log_v).exp()
        z = m + sd * torch.randn(k, *m.shape, dtype=torch.float64)  # (k, B, L)
        log_q = torch.distributions.Normal(m, sd).log_prob(z).sum(-1)
        log_pz = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
        mean = z @ self.W.T + self.b
        log_px_z = torch.distributions.Normal(mean, math.exp(self.log_s)).log_prob(x).sum(-1)
        return torch.logsumexp(log_px_z + log_pz - log_q, 0) - math.log(k)


@pytest.fixture(scope="module")
def model_and_data():
    model = LinearGaussianVAE()
    torch.manual_seed(1)
    x = model.marginal().sample((300,)).detach()
    return model, x


def test_supports_likelihood():
    from lit_gen.models import MODELS

    assert supports_likelihood(LinearGaussianVAE)
    assert not supports_likelihood(MODELS.get("gan"))


def test_elbo_glue_is_the_per_example_mean_in_order(model_and_data):
    model, x = model_and_data
    with torch.no_grad():
        per = per_example_likelihood(model, x, None, k=3, batch_size=7)  # uneven last batch
        exact_elbo = model.elbo(x)
    assert per["elbo"].shape == (300,) and per["iwae_ll"].shape == (300,)
    torch.testing.assert_close(per["elbo"], exact_elbo, rtol=1e-12, atol=0)
    values = likelihood_metrics(per)
    assert values["elbo"] == pytest.approx(float(exact_elbo.mean()), rel=1e-12)


def test_iwae_between_elbo_and_log_px_and_tightens_with_k(model_and_data):
    model, x = model_and_data
    with torch.no_grad():
        log_px = float(model.log_px(x).mean())
        elbo = float(model.elbo(x).mean())
    estimates = {}
    for k in (10, 100, 2000):
        torch.manual_seed(2)
        estimates[k] = likelihood_metrics(per_example_likelihood(model, x, None, k=k))["iwae_ll"]
    # IWAE(1) is an unbiased estimate of the ELBO (20 draws per example: standard error ~0.06)
    torch.manual_seed(3)
    iwae1 = likelihood_metrics(per_example_likelihood(model, x.repeat(20, 1), None, k=1))["iwae_ll"]
    assert log_px - elbo > 1.0  # q is not the posterior: the ELBO gap is real
    assert iwae1 == pytest.approx(elbo, abs=0.25)
    assert elbo < estimates[10] < estimates[100] < log_px + 0.01
    assert estimates[2000] == pytest.approx(log_px, abs=0.01)


def test_evaluator_reports_likelihood_on_the_configured_split(model_and_data):
    model, x = model_and_data
    split_calls = []

    class FakeData:
        cfg = SimpleNamespace(name="linear_gaussian")

        def split(self, name):
            split_calls.append(name)
            return x, torch.zeros(len(x), dtype=torch.long)

    m = SimpleNamespace(names=["likelihood"], likelihood_split="test", likelihood_limit=100,
                        iwae_k=500, likelihood_batch_size=32, batch_size=64)
    ev = Evaluator(m, FakeData(), seed=0)
    values, protocol = ev.evaluate_model(model, tag=0)
    assert split_calls == ["test"]
    with torch.no_grad():
        exact = float(model.elbo(x[:100]).mean())
        log_px = float(model.log_px(x[:100]).mean())
    assert values["elbo"] == pytest.approx(exact, rel=1e-12)
    assert exact < values["iwae_ll"] < log_px + 0.02
    assert protocol["likelihood"] == {"split": "test", "n_examples": 100, "iwae_k": 500,
                                      "unit": "nats per example",
                                      "binarization": "none"}
    again, _ = ev.evaluate_model(model, tag=0)  # same tag: same seed, same estimate
    assert again["iwae_ll"] == values["iwae_ll"]


def test_likelihood_needs_a_model_that_has_it():
    from lit_gen import validation
    from lit_gen.errors import ConfigError

    with pytest.raises(ConfigError, match="elbo"):
        validation.load([], ["data.name=digits", "metrics.names=[likelihood]"])
