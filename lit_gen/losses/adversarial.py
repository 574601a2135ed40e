"""Adversarial losses as (d_loss, g_loss) pairs of pure functions of the critic's raw outputs.

`real` and `fake` are D's raw scores (logits for the probabilistic losses), shape (B,).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

from lit_gen.registry import Registry

Tensor = torch.Tensor


class AdversarialLoss(NamedTuple):
    d_loss: Callable[[Tensor, Tensor], Tensor]  # (real_scores, fake_scores) -> scalar
    g_loss: Callable[[Tensor], Tensor]  # fake_scores -> scalar


LOSSES: Registry[AdversarialLoss] = Registry("loss")


def _bce_d(real: Tensor, fake: Tensor) -> Tensor:
    # -log sigmoid(r) - log(1 - sigmoid(f)) = softplus(-r) + softplus(f)
    return F.softplus(-real).mean() + F.softplus(fake).mean()


# Goodfellow et al. 2014, the original min-max game: G minimises log(1 - D(G(z))).
LOSSES.add("minimax", AdversarialLoss(_bce_d, lambda fake: -F.softplus(fake).mean()))
# The non-saturating variant from the same paper: G maximises log D(G(z)).
LOSSES.add("nonsaturating", AdversarialLoss(_bce_d, lambda fake: F.softplus(-fake).mean()))
# Mao et al. 2017 (a=0, b=1, c=1): least squares on the raw scores.
LOSSES.add("least_squares", AdversarialLoss(
    lambda real, fake: 0.5 * ((real - 1).pow(2).mean() + fake.pow(2).mean()),
    lambda fake: 0.5 * (fake - 1).pow(2).mean()))
# Arjovsky et al. 2017: the critic estimates W1; needs a Lipschitz constraint (clip / gp).
LOSSES.add("wasserstein", AdversarialLoss(
    lambda real, fake: fake.mean() - real.mean(),
    lambda fake: -fake.mean()))
# Lim & Ye 2017 / Miyato et al. 2018: hinge loss for D, linear for G.
LOSSES.add("hinge", AdversarialLoss(
    lambda real, fake: F.relu(1 - real).mean() + F.relu(1 + fake).mean(),
    lambda fake: -fake.mean()))
