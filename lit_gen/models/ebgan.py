"""Energy-based GAN: an autoencoder discriminator with a margin loss."""

from __future__ import annotations

import torch

from lit_gen.losses.energy import ebgan_d_loss, pullaway_term
from lit_gen.models import MODELS
from lit_gen.models.adversarial import Fake
from lit_gen.models.autoencoder_gan import AutoencoderGAN
from lit_gen.models.base import Batch, LossOutput, tiny_config_over
from lit_gen.nets import AEOutput

Tensor = torch.Tensor


@MODELS.register("ebgan")
class EBGAN(AutoencoderGAN):
    """EBGAN (Zhao et al. 2017): the energy is D's mean squared reconstruction error per
    example, D(x) = mean((Dec(Enc(x)) - x)^2). D minimises D(x) + max(0, m - D(G(z))); G
    minimises D(G(z)) + pt_weight * PT(Enc(G(z))), the pull-away term on the codes.

    Args:
        margin: m, in units of the per-pixel squared error (data in [-1, 1]).
        pt_weight: weight of the pull-away term (0 disables it; 0.1 in the paper).
        **kwargs: see AdversarialModule; model.discriminator is an autoencoder net.
    """

    logged_terms = (*AutoencoderGAN.logged_terms, "train/g_energy", "train/pullaway")
    tiny_config = tiny_config_over(AutoencoderGAN.tiny_config, params={"pt_weight": 0.1})

    def __init__(self, *, margin: float = 1.0, pt_weight: float = 0.0, **kwargs):
        self.margin, self.pt_weight = margin, pt_weight
        super().__init__(**kwargs)

    def energy(self, x: Tensor, out: AEOutput) -> Tensor:
        return (out.recon - x).pow(2).flatten(1).mean(1)

    def discriminator_loss(self, real: Batch, fake: Fake) -> LossOutput:
        e_real, e_fake = self.discriminate(real.x), self.discriminate(fake.x)
        return LossOutput(ebgan_d_loss(e_real, e_fake, self.margin),
                          {"energy_real": e_real.mean(), "energy_fake": e_fake.mean()})

    def generator_loss(self, fake: Fake, real: Batch) -> LossOutput:
        out = self.discriminator(fake.x)
        energy = self.energy(fake.x, out).mean()
        logs = {"g_energy": energy}
        loss = energy
        if self.pt_weight:
            logs["pullaway"] = pullaway_term(out.code)
            loss = loss + self.pt_weight * logs["pullaway"]
        return LossOutput(loss, logs)
