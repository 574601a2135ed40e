"""Adversarial autoencoder (Makhzani et al. 2016)."""

from __future__ import annotations

from lit_gen.models import MODELS
from lit_gen.models.base import LossOutput, Phase
from lit_gen.models.wae import WAEGAN


@MODELS.register("aae")
class AAE(WAEGAN):
    """Adversarial autoencoder (Makhzani et al. 2016): a deterministic encoder q(z|x) whose
    aggregated posterior q(z) is matched to the prior N(0, I) by a latent discriminator.

    Every batch runs the paper's two phases with three optimizers (with n_critic > 1 the
    encoder/decoder steps 1 and 2b run on every n_critic-th batch only):
      1. reconstruction: encoder + decoder minimise c(x, G(E(x))) (model.g_optim);
      2. regularisation: D tells prior draws from codes (model.d_optim), then the encoder,
         as D's generator, updates to fool it (model.e_optim; g_optim's values when null).

    It shares WAE-GAN's nets and losses (Tolstikhin et al. 2018 note WAE-GAN is an AAE with
    a joint update); `lam` weighs the encoder's adversarial loss in phase 2.

    Args (besides WAE-GAN's):
        e_optim: the encoder's optimizer in the regularisation phase.
    """

    logged_terms = ("train/recon", "train/d_loss", "train/d_real", "train/d_fake", "train/g_adv",
                    "val/recon", "val/mmd")

    def __init__(self, *, e_optim: dict | None = None, lam: float = 1.0, **kwargs):
        super().__init__(lam=lam, **kwargs)

    def configure_optimizers(self):
        hp = self.hparams
        return self.configure_from(
            (self.autoencoder_parameters(), hp.g_optim, "model.g_optim"),
            (self.discriminator.parameters(), hp.d_optim, "model.d_optim"),
            (self.encoder.parameters(), hp.e_optim or hp.g_optim, "model.e_optim"))

    def reconstruction_loss(self, x, y) -> LossOutput:
        recon = self.recon_cost(x.float(), self(x, y).recon.float()).mean()
        return LossOutput(recon, {"recon": recon})

    def encoder_adversarial_loss(self, x, y) -> LossOutput:
        g_out = self.latent_penalty(self.encode(x, y))
        return LossOutput(self.hparams.lam * g_out.loss, g_out.logs)

    def train_batch(self, batch, batch_idx: int) -> None:
        x, y = self.batch(batch)
        opt_ae, opt_d, opt_e = self.optimizers()
        self.alternate([
            Phase("g", opt_ae, lambda: self.reconstruction_loss(x, y), "recon"),  # 1.
            Phase("d", opt_d, lambda: self.discriminator_loss(x, y), "d_loss"),  # 2a.
            Phase("g", opt_e, lambda: self.encoder_adversarial_loss(x, y), "g_adv"),  # 2b.
        ], prog_bar=("recon", "d_loss"))
