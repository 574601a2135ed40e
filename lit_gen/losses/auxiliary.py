"""Auxiliary terms of GANs with extra heads (pure functions): ACGAN's class loss, InfoGAN's
mutual-information lower bound."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

Tensor = torch.Tensor

LOG_2PI = math.log(2 * math.pi)


class ClassTerms(NamedTuple):
    loss: Tensor  # mean cross-entropy
    accuracy: Tensor  # fraction of argmax predictions equal to the labels


def class_terms(logits: Tensor, labels: Tensor) -> ClassTerms:
    """ACGAN (Odena et al. 2017): -E[log P(C = c | x)] for class logits (B, K), labels (B,)."""
    acc = (logits.detach().argmax(1) == labels).float().mean()
    return ClassTerms(F.cross_entropy(logits, labels), acc)


class InfoTerms(NamedTuple):
    categorical: Tensor  # sum over categorical codes of the mean cross-entropy
    continuous: Tensor  # sum over continuous codes of the mean Gaussian NLL
    accuracy: Tensor  # fraction of categorical codes recovered by argmax (0 when none)


def info_terms(cat_logits: Tensor, cat_codes: Tensor, cont_mean: Tensor, cont_logstd: Tensor,
               cont_codes: Tensor) -> InfoTerms:
    """InfoGAN (Chen et al. 2016): -E[log Q(c | G(z, c))] with Q a product of categoricals
    and factored Gaussians; H(c) minus this is the lower bound L_I on the mutual information.

    Args:
        cat_logits: (B, n_cat, cat_dim) Q's logits for each categorical code.
        cat_codes: (B, n_cat) the categorical codes drawn (class indices).
        cont_mean / cont_logstd: (B, n_cont) Q's Gaussian for each continuous code.
        cont_codes: (B, n_cont) the continuous codes drawn.
    """
    zero = cont_codes.new_zeros(())
    if cat_codes.shape[1]:
        cat = F.cross_entropy(cat_logits.flatten(0, 1), cat_codes.flatten(), reduction="sum")
        cat = cat / len(cat_codes)
        acc = (cat_logits.detach().argmax(2) == cat_codes).float().mean()
    else:
        cat, acc = zero, zero
    if cont_codes.shape[1]:
        # -log N(c; mean, std^2) = 0.5 ((c - mean) / std)^2 + log std + 0.5 log(2 pi)
        nll = 0.5 * ((cont_codes - cont_mean) * torch.exp(-cont_logstd)).pow(2) \
            + cont_logstd + 0.5 * LOG_2PI
        cont = nll.sum(1).mean()
    else:
        cont = zero
    return InfoTerms(cat, cont, acc)
