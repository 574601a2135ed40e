"""Boundary equilibrium GAN: an autoencoder discriminator kept in equilibrium with G."""

from __future__ import annotations

import torch
import torch.distributed as dist

from lit_gen.errors import ConfigError
from lit_gen.losses.energy import began_convergence, began_k_update
from lit_gen.models import MODELS
from lit_gen.models.adversarial import Fake
from lit_gen.models.autoencoder_gan import AutoencoderGAN
from lit_gen.models.base import Batch, LossOutput
from lit_gen.nets import AEOutput

Tensor = torch.Tensor


@MODELS.register("began")
class BEGAN(AutoencoderGAN):
    """BEGAN (Berthelot et al. 2017): L(v) = mean |v - AE(v)| per example (eta = 1).
    L_D = L(x) - k_t L(G(z)), L_G = L(G(z)); after each D step
    k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1) from that step's batch
    means (averaged over DDP ranks). k_t is a buffer, so it survives checkpoints. Logs k and
    the convergence measure m_global = L(x) + |gamma L(x) - L(G(z))|.

    Args:
        gamma: diversity ratio E[L(G(z))] / E[L(x)] the equilibrium aims at (0.5).
        lambda_k: learning rate of k (0.001).
        k_init: k_0 (0 in the paper).
        **kwargs: see AdversarialModule; model.discriminator is an autoencoder net.
    """

    logged_terms = (*AutoencoderGAN.logged_terms, "train/m_global", "train/k", "val/m_global")

    def __init__(self, *, gamma: float = 0.5, lambda_k: float = 0.001, k_init: float = 0.0,
                 **kwargs):
        if not 0.0 <= k_init <= 1.0 or gamma <= 0:
            raise ConfigError(f"BEGAN needs 0 <= model.params.k_init <= 1 and gamma > 0, "
                              f"got k_init={k_init}, gamma={gamma}")
        self.gamma, self.lambda_k = gamma, lambda_k
        super().__init__(**kwargs)
        self.register_buffer("k", torch.tensor(float(k_init)))

    def energy(self, x: Tensor, out: AEOutput) -> Tensor:
        return (out.recon - x).abs().flatten(1).mean(1)

    def discriminator_loss(self, real: Batch, fake: Fake) -> LossOutput:
        l_real, l_fake = self.discriminate(real.x).mean(), self.discriminate(fake.x).mean()
        logs = {**self.energy_logs(l_real.detach(), l_fake.detach()), "k": self.k.clone()}
        return LossOutput(l_real - self.k * l_fake, logs)

    @torch.no_grad()
    def after_discriminator_step(self, d_out: LossOutput) -> None:
        terms = torch.stack([d_out.logs["energy_real"], d_out.logs["energy_fake"]]).detach().float()
        if dist.is_available() and dist.is_initialized():
            # every rank must hold the same k_t
            dist.all_reduce(terms)
            terms /= dist.get_world_size()
        self.k.copy_(began_k_update(self.k, terms[0], terms[1], self.gamma, self.lambda_k))

    def energy_logs(self, e_real: Tensor, e_fake: Tensor) -> dict[str, Tensor]:
        return {**super().energy_logs(e_real, e_fake),
                "m_global": began_convergence(e_real, e_fake, self.gamma)}

    def generator_loss(self, fake: Fake, real: Batch) -> LossOutput:
        return LossOutput(self.discriminate(fake.x).mean(), {})
