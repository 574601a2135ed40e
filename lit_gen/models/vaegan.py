"""VAE-GAN (Larsen et al. 2016): a VAE whose decoder is a GAN generator and whose
reconstruction error is measured in a hidden layer of the discriminator."""

from __future__ import annotations

import torch

from lit_gen.errors import ConfigError
from lit_gen.losses import LOSSES
from lit_gen.losses.vae import gaussian_kl, reparameterize
from lit_gen.models import MODELS
from lit_gen.models.autoencoder import AutoEncoderModule
from lit_gen.models.base import LossOutput, Phase, tiny_config_over
from lit_gen.models.vae import VAEOutput
from lit_gen.nets import build_net

Tensor = torch.Tensor


@MODELS.register("vaegan")
class VAEGAN(AutoEncoderModule):
    """VAE-GAN (Larsen et al. 2016).

    Gaussian encoder q(z|x), decoder = GAN generator G, discriminator D. With
    f = D.features (D's last hidden layer) and L_feat = 0.5 * ||f(x) - f(G(z))||^2 per example
    (a unit-variance Gaussian log-likelihood in feature space, up to a constant):

      - D (model.d_optim):       d_loss(D(x), D([G(z), G(z_p)]))  (reconstructions and prior
                                 samples are both fakes; no L_feat gradient reaches D)
      - encoder (model.e_optim): beta * KL(q(z|x) || N(0, I)) + L_feat
      - decoder (model.g_optim): gamma * L_feat + g_loss(D([G(z), G(z_p)]))

    One step of each per batch, in that order (D first, as in the GAN loop); with n_critic > 1
    the encoder and decoder steps run on every n_critic-th batch only.

    Args:
        discriminator: D net spec (must provide `features`).
        loss: adversarial loss name (lit_gen.losses.LOSSES).
        beta: weight of the KL term in the encoder loss.
        gamma: weight of L_feat in the decoder loss (Larsen's gamma).
        n_critic: D steps per encoder/decoder step.
        g_optim / d_optim / e_optim: optimizers of decoder, D and encoder; e_optim takes
            g_optim's values when null.
    """

    uses_nets = ("generator", "encoder", "discriminator")
    ddp_find_unused_parameters = True
    stochastic_encoder = True
    logged_terms = ("train/d_loss", "train/d_real", "train/d_fake", "train/kl", "train/feat_recon",
                    "train/e_loss", "train/g_adv", "train/g_loss",
                    "val/kl", "val/feat_recon", "val/pixel_l2sq")
    tiny_config = tiny_config_over(AutoEncoderModule.tiny_config,
                                   discriminator={"name": "mlp", "hidden": [32]})

    def __init__(self, *, discriminator: dict | None = None, loss: str = "nonsaturating",
                 beta: float = 1.0, gamma: float = 1e-2, n_critic: int = 1,
                 g_optim: dict | None = None, d_optim: dict | None = None,
                 e_optim: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.n_critic = n_critic
        if beta < 0 or gamma < 0:
            raise ConfigError(f"model.params.beta and gamma must be >= 0, got {beta}, {gamma}")
        self.adv_loss = LOSSES.get(loss, "model.loss")
        self.discriminator = build_net(discriminator or {"name": "mlp"}, "discriminator",
                                       "model.discriminator", in_shape=self.data_shape)
        if not hasattr(self.discriminator, "features"):
            raise ConfigError("model.discriminator: VAE-GAN needs a net with a `features` method")

    def forward(self, x: Tensor, y: Tensor | None = None) -> VAEOutput:
        mu, logvar = self.posterior(x, y)
        z = reparameterize(mu, logvar)
        return VAEOutput(self.decoder_output(z, y), mu, logvar, z)

    def feature_distance(self, x: Tensor, recon: Tensor) -> Tensor:
        """L_feat per example (B,): 0.5 * ||f(x) - f(recon)||^2 over D's hidden features."""
        with torch.no_grad():
            target = self.discriminator.features(x).float()
        return 0.5 * (self.discriminator.features(recon).float() - target).pow(2).sum(1)

    def scores(self, x: Tensor) -> Tensor:
        return self.discriminator(x).flatten()

    def configure_optimizers(self):
        hp = self.hparams
        return self.configure_from(
            (self.encoder.parameters(), hp.e_optim or hp.g_optim, "model.e_optim"),
            (self.generator.parameters(), hp.g_optim, "model.g_optim"),
            (self.discriminator.parameters(), hp.d_optim, "model.d_optim"))

    def discriminator_loss(self, x: Tensor, fakes: Tensor) -> LossOutput:
        d_real, d_fake = self.scores(x), self.scores(fakes)
        d = self.adv_loss.d_loss(d_real, d_fake)
        return LossOutput(d, {"d_loss": d, "d_real": d_real.mean(), "d_fake": d_fake.mean()})

    def train_batch(self, batch, batch_idx: int) -> None:
        x, y = self.batch(batch)
        opt_e, opt_g, opt_d = self.optimizers()
        z_p = self.sample_latent(len(x))
        codes: list[Tensor] = []  # the encoder phase's z, decoded again in the decoder phase

        def d_loss() -> LossOutput:
            with torch.no_grad():
                fakes = torch.cat([self(x, y).recon, self.decoder_output(z_p, y)])
            return self.discriminator_loss(x, fakes)

        def e_loss() -> LossOutput:
            out = self(x, y)
            codes.append(out.z.detach())
            kl = gaussian_kl(out.mu, out.logvar).mean()
            feat = self.feature_distance(x, out.recon).mean()
            loss = self.hparams.beta * kl + feat
            return LossOutput(loss, {"kl": kl, "feat_recon": feat, "e_loss": loss})

        def g_loss() -> LossOutput:
            recon = self.decoder_output(codes[-1], y)
            feat_g = self.feature_distance(x, recon).mean()
            g_adv = self.adv_loss.g_loss(self.scores(torch.cat([recon, self.decoder_output(z_p, y)])))
            loss = self.hparams.gamma * feat_g + g_adv
            return LossOutput(loss, {"g_adv": g_adv, "g_loss": loss})

        self.alternate([Phase("d", opt_d, d_loss, "d_loss"), Phase("g", opt_e, e_loss, "e_loss"),
                        Phase("g", opt_g, g_loss, "g_loss")], prog_bar=("d_loss", "g_loss", "kl"))

    def validation_step(self, batch, batch_idx: int) -> None:
        x, y = self.batch(batch)
        mu, logvar = self.posterior(x, y)
        recon = self.decode(mu, y)
        self.log_terms({"kl": gaussian_kl(mu, logvar).mean(),
                        "feat_recon": self.feature_distance(x, recon).mean(),
                        "pixel_l2sq": (x - recon).pow(2).flatten(1).sum(1).mean()}, prefix="val")
