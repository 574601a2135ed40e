"""Conditional GAN: G and D both see the label."""

from __future__ import annotations

import torch
from torch import nn

from lit_gen.models import MODELS
from lit_gen.models.adversarial import AdversarialModule
from lit_gen.nets import build_net
from lit_gen.nets.projection import ProjectionDiscriminator

Tensor = torch.Tensor


@MODELS.register("cgan")
class CGAN(AdversarialModule):
    """Conditional GAN (Mirza & Osindero 2014): the one-hot label (B, num_classes) is
    concatenated to z in G and to the input of D (as constant maps for conv nets).

    With `projection: true` D is a projection discriminator (Miyato & Koyama 2018) instead:
    D(x, y) = head(phi(x)) + <embed(y), phi(x)>; the label no longer enters D's input.

    Args:
        projection: use the projection discriminator.
        **kwargs: see AdversarialModule.
    """

    stackable = False  # labels / heads / shared state: no `seeds` ensembles
    packable = False  # its D reads single samples (labels, heads, reconstructions)

    conditional = True

    def __init__(self, *, projection: bool = False, **kwargs):
        self.projection = projection
        super().__init__(**kwargs)

    def generator_input_dim(self) -> tuple[int, int]:
        return self.latent_dim, self.num_classes

    def build_discriminator(self, spec: dict) -> nn.Module:
        if not self.projection:
            return build_net(spec, "discriminator", "model.discriminator",
                             in_shape=self.data_shape, cond_dim=self.num_classes)
        base = build_net(spec, "discriminator", "model.discriminator", in_shape=self.data_shape)
        return ProjectionDiscriminator(base, self.num_classes,
                                       spectral=spec.get("norm") == "spectral")

    def discriminate(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.discriminator(x, self.label_condition(y)).flatten()
