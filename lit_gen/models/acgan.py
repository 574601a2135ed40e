"""Auxiliary classifier GAN: D also predicts the class."""

from __future__ import annotations

import torch
from torch import nn

from lit_gen.losses.auxiliary import class_terms
from lit_gen.models import MODELS
from lit_gen.models.adversarial import AdversarialModule, Fake
from lit_gen.models.base import Batch, LossOutput
from lit_gen.nets import build_net

Tensor = torch.Tensor


@MODELS.register("acgan")
class ACGAN(AdversarialModule):
    """AC-GAN (Odena et al. 2017): G(z, c) is label-conditioned; D sees only x and has
    1 + num_classes outputs: a source logit (real/fake, trained with `model.loss`) and class
    logits. Both players minimise the class cross-entropy L_C (D on real and fake, G on
    fake): L_D = L_S + class_weight * L_C, L_G = L_S^G + class_weight * L_C(fake).

    Logs D's class accuracy on real (`acc_real`) and on fake (`acc_fake`) images.

    Args:
        class_weight: weight of the class losses (1 in the paper).
        **kwargs: see AdversarialModule.
    """

    stackable = False  # labels / heads / shared state: no `seeds` ensembles
    packable = False  # its D reads single samples (labels, heads, reconstructions)

    conditional = True
    logged_terms = (*AdversarialModule.logged_terms, "train/d_cls_real", "train/d_cls_fake",
                    "train/acc_real", "train/acc_fake", "train/g_adv", "train/g_cls",
                    "val/acc_real")

    def __init__(self, *, class_weight: float = 1.0, **kwargs):
        self.class_weight = class_weight
        super().__init__(**kwargs)

    def generator_input_dim(self) -> tuple[int, int]:
        return self.latent_dim, self.num_classes

    def build_discriminator(self, spec: dict) -> nn.Module:
        return build_net(spec, "discriminator", "model.discriminator",
                         in_shape=self.data_shape, out_dim=1 + self.num_classes)

    def discriminate(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.discriminator(x)[:, 0]

    def discriminator_loss(self, real: Batch, fake: Fake) -> LossOutput:
        out_real, out_fake = self.discriminator(real.x), self.discriminator(fake.x)  # (B, 1+K)
        adv = self.adv_loss.d_loss(out_real[:, 0], out_fake[:, 0])
        cls_real = class_terms(out_real[:, 1:], real.y)
        cls_fake = class_terms(out_fake[:, 1:], fake.y)
        logs = {"d_adv": adv, "d_real": out_real[:, 0].mean(), "d_fake": out_fake[:, 0].mean(),
                "d_cls_real": cls_real.loss, "d_cls_fake": cls_fake.loss,
                "acc_real": cls_real.accuracy, "acc_fake": cls_fake.accuracy}
        return LossOutput(adv + self.class_weight * (cls_real.loss + cls_fake.loss), logs)

    def generator_loss(self, fake: Fake, real: Batch) -> LossOutput:
        out = self.discriminator(fake.x)
        adv = self.adv_loss.g_loss(out[:, 0])
        cls = class_terms(out[:, 1:], fake.y)
        return LossOutput(adv + self.class_weight * cls.loss, {"g_adv": adv, "g_cls": cls.loss})

    def validation_step(self, batch, batch_idx: int) -> None:
        super().validation_step(batch, batch_idx)
        real = Batch(*batch)
        self.log_terms({"acc_real": class_terms(self.discriminator(real.x)[:, 1:], real.y).accuracy},
                       prefix="val")
