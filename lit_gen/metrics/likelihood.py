"""Likelihood metrics for models that define them (the VAE family).

A model supports them when it has `elbo(x, y=None) -> (B,)` and
`iwae_log_likelihood(x, y=None, k=...) -> (B,)`: per-example lower bounds on log p(x) in
nats (Kingma & Welling 2014; Burda et al. 2016, whose bound tightens as k grows). The glue
here averages them over a data split, batch by batch, in eval mode without gradients.
"""

from __future__ import annotations

import torch

from lit_gen.nets.layers import eval_mode

Tensor = torch.Tensor

LIKELIHOOD_KEYS = ("elbo", "iwae_ll")


def supports_likelihood(model_or_cls) -> bool:
    return callable(getattr(model_or_cls, "elbo", None)) and \
        callable(getattr(model_or_cls, "iwae_log_likelihood", None))


@torch.no_grad()
def per_example_likelihood(model, x: Tensor, y: Tensor | None, k: int,
                           batch_size: int = 64) -> dict[str, Tensor]:
    """Per-example ELBO and IWAE(k) estimates, (N,) float64 on the CPU, in nats.

    Args:
        model: a module with `elbo` and `iwae_log_likelihood`.
        x: data (N, ...) as the data module gives it ([-1, 1] for images).
        y: labels (N,), passed on for conditional models only.
        k: importance samples per example for the IWAE bound.
        batch_size: examples per call.
    """
    device = next(model.parameters()).device
    use_y = y is not None and getattr(model, "conditional", False)
    elbo, iwae = [], []
    with eval_mode(model):
        for start in range(0, len(x), batch_size):
            xb = x[start:start + batch_size].to(device)
            yb = y[start:start + batch_size].to(device) if use_y else None
            elbo.append(model.elbo(xb, yb).double().cpu())
            iwae.append(model.iwae_log_likelihood(xb, yb, k=k).double().cpu())
    return {"elbo": torch.cat(elbo), "iwae_ll": torch.cat(iwae)}


def likelihood_metrics(per_example: dict[str, Tensor]) -> dict[str, float]:
    """Means over the examples: {"elbo": nats, "iwae_ll": nats} (higher is better)."""
    return {key: float(per_example[key].mean()) for key in LIKELIHOOD_KEYS}
