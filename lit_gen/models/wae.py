"""Wasserstein autoencoders (Tolstikhin et al. 2018): WAE-MMD and WAE-GAN."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lit_gen.errors import ConfigError
from lit_gen.losses import LOSSES
from lit_gen.losses.vae import RECON_COSTS, WAE_MMD_SCALES, imq_mmd
from lit_gen.models import MODELS
from lit_gen.models.autoencoder import AutoEncoderModule
from lit_gen.models.base import LossOutput, Phase, tiny_config_over
from lit_gen.nets import AEOutput, build_net

Tensor = torch.Tensor


@MODELS.register("wae_mmd")
class WAE(AutoEncoderModule):
    """WAE-MMD (Tolstikhin et al. 2018): a deterministic encoder z = E(x), decoder G(z) and

        loss = E[c(x, G(E(x)))] + lambda * MMD^2(q(z), p(z)),  p(z) = N(0, I),

    with the inverse multiquadratic kernel k(x, y) = C / (C + ||x - y||^2), C = 2 * d *
    sigma^2 (sigma^2 = 1, the prior variance; d = latent_dim), summed over the paper code's
    scales s * C, s in (0.1 ... 10), and the unbiased MMD estimator (lit_gen.losses.vae.mmd).

    Args:
        lam: lambda, the weight of the latent regulariser (paper: 10 for MMD, 1 for GAN).
        recon_cost: c(x, y) per example: l2sq (||x - y||^2, the paper's) | l1.
        mmd_scales: multiples of C the IMQ kernel is summed over.
        g_optim: the optimizer of encoder and decoder.
    """

    logged_terms = ("train/recon", "train/mmd", "train/loss", "val/recon", "val/mmd")

    def __init__(self, *, lam: float = 10.0, recon_cost: str = "l2sq",
                 mmd_scales: Sequence[float] = WAE_MMD_SCALES, g_optim: dict | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        if lam < 0:
            raise ConfigError(f"model.params.lam must be >= 0, got {lam}")
        if not mmd_scales or min(mmd_scales) <= 0:
            raise ConfigError("model.params.mmd_scales must be a non-empty list of positive numbers")
        self.recon_cost = RECON_COSTS.get(recon_cost, "model.params.recon_cost")

    def forward(self, x: Tensor, y: Tensor | None = None, net: nn.Module | None = None) -> AEOutput:
        """recon (B, *data_shape) = G(z), code z = E(x) (B, latent_dim)."""
        z = self.encode(x, y)
        return AEOutput(self.decoder_output(z, y, net), z)

    def prior_like(self, z: Tensor) -> Tensor:
        return torch.randn_like(z)

    def mmd(self, z: Tensor) -> Tensor:
        return imq_mmd(z.float(), self.prior_like(z).float(), scales=self.hparams.mmd_scales)

    def latent_penalty(self, z: Tensor) -> LossOutput:
        """The divergence between q(z) and p(z) the encoder minimises (before lambda)."""
        m = self.mmd(z)
        return LossOutput(m, {"mmd": m})

    def autoencoder_loss(self, x: Tensor, y: Tensor | None) -> LossOutput:
        out = self(x, y)
        recon = self.recon_cost(x.float(), out.recon.float()).mean()
        pen = self.latent_penalty(out.code)
        loss = recon + self.hparams.lam * pen.loss
        return LossOutput(loss, {"recon": recon, **pen.logs, "loss": loss})

    def configure_optimizers(self):
        return self.configure_from((self.autoencoder_parameters(), self.hparams.g_optim,
                                    "model.g_optim"))

    def train_batch(self, batch, batch_idx: int) -> None:
        x, y = self.batch(batch)
        out = self.autoencoder_loss(x, y)
        self.step_optimizer(self.optimizers(), out.loss, "loss", out.logs)
        self.after_generator_step()
        self.log_step(out.logs, prog_bar=("recon",))

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = self.batch(batch)
        out = self(x, y, self.sampling_generator())
        logs = {"recon": self.recon_cost(x.float(), out.recon.float()).mean()}
        if len(x) >= 2:
            logs["mmd"] = self.mmd(out.code)
        self.log_terms(logs, prefix="val")


@MODELS.register("wae_gan")
class WAEGAN(WAE):
    """WAE-GAN (Tolstikhin et al. 2018): WAE whose latent regulariser is a GAN in latent space.
    A latent discriminator D(z) (an MLP over (latent_dim,)) tells prior draws from codes; each
    batch makes one D step on lambda * d_loss(D(z_prior), D(E(x))) and one encoder/decoder
    step on c(x, G(E(x))) + lambda * g_loss(D(E(x))) (the encoder/decoder step on every
    `n_critic`-th batch only).

    Args (besides WAE's):
        discriminator: latent D net spec (in_shape is (latent_dim,)).
        loss: adversarial loss name (lit_gen.losses.LOSSES).
        n_critic: D steps per encoder/decoder step.
        d_optim: D's optimizer.
    """

    uses_nets = ("generator", "encoder", "discriminator")
    ddp_find_unused_parameters = True
    logged_terms = ("train/d_loss", "train/d_real", "train/d_fake", "train/recon", "train/g_adv",
                    "train/loss", "val/recon", "val/mmd")
    tiny_config = tiny_config_over(AutoEncoderModule.tiny_config,
                                   discriminator={"name": "mlp", "hidden": [32]})

    def __init__(self, *, discriminator: dict | None = None, loss: str = "nonsaturating",
                 n_critic: int = 1, d_optim: dict | None = None, lam: float = 1.0, **kwargs):
        super().__init__(lam=lam, **kwargs)
        self.n_critic = n_critic
        self.adv_loss = LOSSES.get(loss, "model.loss")
        self.discriminator = build_net(discriminator or {"name": "mlp"}, "discriminator",
                                       "model.discriminator", in_shape=(self.latent_dim,))

    def latent_scores(self, z: Tensor) -> Tensor:
        return self.discriminator(z).flatten()

    def latent_penalty(self, z: Tensor) -> LossOutput:
        g = self.adv_loss.g_loss(self.latent_scores(z))
        return LossOutput(g, {"g_adv": g})

    def discriminator_loss(self, x: Tensor, y: Tensor | None) -> LossOutput:
        """D's loss on prior draws (real) against codes of x (fake), before lambda."""
        with torch.no_grad():
            z = self.encode(x, y)
        d_real, d_fake = self.latent_scores(self.prior_like(z)), self.latent_scores(z)
        d = self.adv_loss.d_loss(d_real, d_fake)
        return LossOutput(d, {"d_loss": d, "d_real": d_real.mean(), "d_fake": d_fake.mean()})

    def configure_optimizers(self):
        return self.configure_from(
            (self.autoencoder_parameters(), self.hparams.g_optim, "model.g_optim"),
            (self.discriminator.parameters(), self.hparams.d_optim, "model.d_optim"))

    def latent_d_phase(self, opt_d, x: Tensor, y: Tensor | None) -> Phase:
        """D's step on lambda * its loss (the logged d_loss is before lambda)."""
        def loss() -> LossOutput:
            d_out = self.discriminator_loss(x, y)
            return LossOutput(self.hparams.lam * d_out.loss, d_out.logs)

        return Phase("d", opt_d, loss, "d_loss")

    def train_batch(self, batch, batch_idx: int) -> None:
        x, y = self.batch(batch)
        opt_ae, opt_d = self.optimizers()
        self.alternate([self.latent_d_phase(opt_d, x, y),
                        Phase("g", opt_ae, lambda: self.autoencoder_loss(x, y), "loss")],
                       prog_bar=("recon", "d_loss"))
