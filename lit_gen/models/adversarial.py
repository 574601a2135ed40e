"""The one adversarial training loop (manual optimization); variants override small hooks."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from lit_gen.errors import ConfigError
from lit_gen.losses import LOSSES, PENALTIES
from lit_gen.losses.penalties import Draws
from lit_gen.models.base import (
    Batch,
    GenerativeModule,
    LossOutput,
    Phase,
    build_optimizer,
    build_scheduler,
    default_optim,
)
from lit_gen.nets import build_net

Tensor = torch.Tensor


class Fake(NamedTuple):
    """A generated batch: x = G(z, y), with the latent z (and codes) and labels y used."""

    x: Tensor
    z: Tensor
    y: Tensor | None


class AdversarialModule(GenerativeModule):
    """A GAN: generator G and discriminator/critic D trained alternately.

    Each training batch makes one D step; every `n_critic`-th batch also makes one G step
    (a fresh z), through `GenerativeModule.alternate`. Overrides return only their own
    terms: the loop adds the D penalties, logs the totals `d_loss` / `g_loss` and counts the
    steps. The adversarial loss and the D penalties come from registries, so GAN
    (Goodfellow et al. 2014), DCGAN (Radford et al. 2015), LSGAN (Mao et al. 2017), WGAN
    (Arjovsky et al. 2017), WGAN-GP (Gulrajani et al. 2017), DRAGAN (Kodali et al. 2017),
    hinge / SN-GAN (Miyato et al. 2018) and R1 GANs (Mescheder et al. 2018) are configs of
    this one class. Structurally different GANs (lit_gen/models/*.py: CGAN, AC-GAN, InfoGAN,
    EBGAN, BEGAN) subclass it and override `discriminator_loss`, `generator_loss`,
    `generate_fake`, `discriminate`, `discriminator_parameters` (what D's optimizer trains)
    or `after_discriminator_step` (state updated after each D step).

    Args:
        generator / discriminator: net specs `{name, **kwargs}` (see lit_gen.nets).
        loss: adversarial loss name (lit_gen.losses.LOSSES).
        penalties: `[{name, **kwargs}]` D penalties (lit_gen.losses.PENALTIES).
        n_critic: D steps per G step.
        pack: PacGAN (Lin et al. 2018): D scores `pack` samples concatenated along the
            feature/channel dimension, real with real and fake with fake; losses and
            penalties see the packed inputs. The batch must be a multiple of `pack`.
        g_optim / d_optim: optimizer configs (lit_gen.config.OptimConfig as dict).
        max_epochs: for LR schedules.
    """

    uses_nets = ("generator", "discriminator")
    #: `seeds` ensembles and `model.pack` work for the loss/penalty variants of this loop;
    #: subclasses with labels, heads or state shared across samples declare False
    stackable = True
    packable = True
    logged_terms = ("train/d_adv", "train/d_real", "train/d_fake", "train/d_loss", "train/g_loss",
                    "val/d_real", "val/d_fake", "val/d_adv")
    tiny_config = {"data": {"name": "digits"},
                   "model": {"latent_dim": 8, "generator": {"name": "mlp", "hidden": [32]},
                             "discriminator": {"name": "mlp", "hidden": [32]},
                             "penalties": [{"name": "r1", "gamma": 1.0}]}}

    def __init__(self, *, generator: dict | None = None, discriminator: dict | None = None,
                 loss: str = "nonsaturating", penalties: list | tuple = (), n_critic: int = 1,
                 g_optim: dict | None = None, d_optim: dict | None = None,
                 max_epochs: int | None = None, pack: int = 1, **kwargs):
        super().__init__(**kwargs)
        if pack < 1:
            raise ConfigError(f"model.pack must be >= 1, got {pack}")
        if pack > 1 and not self.packable:
            raise ConfigError(f"model.pack: '{type(self).__name__}' does not pack its "
                              "discriminator's inputs; use pack=1 or a loss variant of model gan")
        self.pack = pack
        self.n_critic = n_critic
        self.adv_loss = LOSSES.get(loss, "model.loss")
        self.penalties = [PENALTIES.get(p["name"], "model.penalties.name")(
            **{k: v for k, v in p.items() if k != "name"}) for p in penalties]
        self.generator, self.discriminator = self.build_members(
            lambda: self.build_generator(generator or {"name": "mlp"}),
            lambda: self.build_discriminator(discriminator or {"name": "mlp"}))
        self.setup_ema()

    # --- construction hooks -------------------------------------------------------------
    def generator_input_dim(self) -> tuple[int, int]:
        """(latent size, condition size) the generator takes."""
        return self.latent_dim, 0

    def build_generator(self, spec: dict) -> nn.Module:
        latent, cond = self.generator_input_dim()
        extra = {"cond_dim": cond} if cond else {}
        return build_net(spec, "generator", "model.generator", latent_dim=latent,
                         out_shape=self.data_shape, **extra)

    def build_discriminator(self, spec: dict) -> nn.Module:
        # a packed D sees `pack` samples concatenated along the first (feature/channel) axis
        in_shape = (self.data_shape[0] * self.pack, *self.data_shape[1:])
        return build_net(spec, "discriminator", "model.discriminator", in_shape=in_shape)

    def packed(self, x: Tensor) -> Tensor:
        """(B, C, ...) -> (B // pack, pack * C, ...): each group of `pack` consecutive
        samples concatenated (a batch's remainder dropped). Consecutive rows stay within one
        member's chunk of an ensemble batch, whose chunks are multiples of `pack`."""
        if self.pack == 1:
            return x
        n = len(x) // self.pack * self.pack
        return x[:n].reshape(n // self.pack, self.pack * x.shape[1], *x.shape[2:])

    # --- the hooks variants override ------------------------------------------------------
    def discriminate(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """D's raw scores, (B,) (or (B // pack,) for a packed D)."""
        return self.discriminator(self.packed(x)).flatten()

    def generate_fake(self, n: int, labels: Tensor | None = None) -> Fake:
        """Draw z (and labels for conditional models) and run the training generator."""
        y = labels if labels is not None else self.sample_labels(n)
        z = self.sample_latent(n)
        return Fake(self.decode(z, y, net=self.generator), z, y)

    def discriminator_loss(self, real: Batch, fake: Fake) -> LossOutput:
        """D's own loss and terms; the loop adds the penalties and logs the total (d_loss)."""
        y_real = real.y if self.conditional else None
        d_real = self.discriminate(real.x, y_real)
        d_fake = self.discriminate(fake.x, fake.y)
        adv = self.adv_loss.d_loss(d_real, d_fake)
        return LossOutput(adv, {"d_adv": adv, "d_real": d_real.mean(), "d_fake": d_fake.mean()})

    def generator_loss(self, fake: Fake, real: Batch) -> LossOutput:
        """G's own loss and terms; the loop logs the total (g_loss)."""
        g = self.adv_loss.g_loss(self.discriminate(fake.x, fake.y))
        return LossOutput(g, {})

    # --- what the loop adds ---------------------------------------------------------------
    def penalty_loss(self, real: Batch, fake: Fake, logs: dict[str, Tensor]) -> Tensor | float:
        """The sum of the configured D penalties on `discriminate`; adds each to `logs`."""
        y_real = real.y if self.conditional else None
        if self.pack > 1:  # penalties act on D's own (packed) inputs
            critic = lambda x: self.discriminator(x).flatten()  # noqa: E731
            real_x, fake_x = self.packed(real.x), self.packed(fake.x)
        else:
            critic = lambda x: self.discriminate(x, y_real)  # noqa: E731
            real_x, fake_x = real.x, fake.x
        # an ensemble's members draw from their own streams, over their own chunks
        draws = Draws(self.member_rngs() if self.n_members > 1 else None)
        total: Tensor | float = 0.0
        for p in self.penalties:
            term = p.loss(critic, real_x, fake_x, draws)
            if term is not None:
                logs[f"penalty_{p.name}"] = term
                total = total + term
        return total

    def discriminator_objective(self, real: Batch, fake: Fake) -> LossOutput:
        """What D's step minimises: `discriminator_loss` plus the penalties, logged as d_loss."""
        own = self.discriminator_loss(real, fake)
        logs = dict(own.logs)
        loss = own.loss + self.penalty_loss(real, fake, logs)
        logs["d_loss"] = loss
        return LossOutput(loss, logs)

    def generator_objective(self, fake: Fake, real: Batch) -> LossOutput:
        """What G's step minimises: `generator_loss`, logged as g_loss."""
        own = self.generator_loss(fake, real)
        return LossOutput(own.loss, {**own.logs, "g_loss": own.loss})

    def discriminator_parameters(self):
        """What D's optimizer trains (InfoGAN adds its Q head)."""
        return self.discriminator.parameters()

    def after_discriminator_step(self, d_out: LossOutput) -> None:
        """State updates after each D step, from its loss terms (BEGAN's k_t)."""

    # --- the loop -------------------------------------------------------------------------
    def configure_optimizers(self):
        hp = self.hparams
        opt_g = build_optimizer(self.generator.parameters(), hp.g_optim or default_optim(),
                                "model.g_optim")
        opt_d = build_optimizer(self.discriminator_parameters(), hp.d_optim or default_optim(),
                                "model.d_optim")
        scheds = [s for s in (build_scheduler(opt_g, hp.g_optim or {}, hp.max_epochs, "model.g_optim"),
                              build_scheduler(opt_d, hp.d_optim or {}, hp.max_epochs, "model.d_optim"))
                  if s is not None]
        return [opt_g, opt_d], scheds

    def train_batch(self, batch, batch_idx: int) -> None:
        real = Batch(*batch)
        opt_g, opt_d = self.optimizers()
        n = len(real.x)

        def d_loss() -> LossOutput:
            with torch.no_grad():  # fakes without a graph into G
                fake = self.generate_fake(n)
            return self.discriminator_objective(real, fake)

        def d_after(d_out: LossOutput) -> None:
            for p in self.penalties:
                p.after_step(self.discriminator)
            self.after_discriminator_step(d_out)

        self.alternate([
            Phase("d", opt_d, d_loss, "d_loss", d_after),
            Phase("g", opt_g, lambda: self.generator_objective(self.generate_fake(n), real),
                  "g_loss"),
        ], prog_bar=("d_loss", "g_loss"))

    def validation_step(self, batch, batch_idx: int) -> None:
        real = Batch(*batch)
        fake = self.generate_fake(len(real.x))
        y_real = real.y if self.conditional else None
        d_real = self.discriminate(real.x, y_real)
        d_fake = self.discriminate(fake.x, fake.y)
        self.log_terms({"d_real": d_real.mean(), "d_fake": d_fake.mean(),
                        "d_adv": self.adv_loss.d_loss(d_real, d_fake)}, prefix="val")
