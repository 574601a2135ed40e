"""Adversarial autoencoder (Makhzani et al. 2016)."""

from __future__ import annotations

from lit_gen.models import MODELS
from lit_gen.models.wae import WAEGAN


@MODELS.register("aae")
class AAE(WAEGAN):
    """Adversarial autoencoder (Makhzani et al. 2016): a deterministic encoder q(z|x) whose
    aggregated posterior q(z) is matched to the prior N(0, I) by a latent discriminator.

    Every batch runs the paper's two phases with three optimizers:
      1. reconstruction: encoder + decoder minimise c(x, G(E(x))) (model.g_optim);
      2. regularisation: D tells prior draws from codes (model.d_optim), then the encoder,
         as D's generator, updates to fool it (model.e_optim; g_optim's values when null).

    It shares WAE-GAN's nets and losses (Tolstikhin et al. 2018 note WAE-GAN is an AAE with
    a joint update); `lam` weighs the encoder's adversarial loss in phase 2.

    Args (besides WAE-GAN's):
        e_optim: the encoder's optimizer in the regularisation phase.
    """

    def __init__(self, *, e_optim: dict | None = None, lam: float = 1.0, **kwargs):
        super().__init__(lam=lam, **kwargs)

    def configure_optimizers(self):
        hp = self.hparams
        return self.configure_from(
            (self.autoencoder_parameters(), hp.g_optim, "model.g_optim"),
            (self.discriminator.parameters(), hp.d_optim, "model.d_optim"),
            (self.encoder.parameters(), hp.e_optim or hp.g_optim, "model.e_optim"))

    def training_step(self, batch, batch_idx: int) -> None:
        x, y = self.batch(batch)
        opt_ae, opt_d, opt_e = self.optimizers()
        # 1. reconstruction phase
        with self.toggled_optimizer(opt_ae):
            out = self(x, y)
            recon = self.recon_cost(x.float(), out.recon.float()).mean()
            self.step_optimizer(opt_ae, recon)
        # 2a. regularisation phase: the latent discriminator
        with self.toggled_optimizer(opt_d):
            d_out = self.discriminator_loss(x, y)
            self.step_optimizer(opt_d, d_out.loss)
        self.d_steps += 1
        # 2b. the encoder as D's generator
        with self.toggled_optimizer(opt_e):
            g_out = self.latent_penalty(self.encode(x, y))
            self.step_optimizer(opt_e, self.hparams.lam * g_out.loss)
        self.g_steps += 1
        self.update_ema()
        self.log_step({"recon": recon, **d_out.logs, **g_out.logs}, prog_bar=("recon", "d_loss"))
