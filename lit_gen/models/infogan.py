"""InfoGAN: latent codes whose mutual information with G's output is maximised."""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from lit_gen.errors import ConfigError
from lit_gen.losses.auxiliary import InfoTerms, info_terms
from lit_gen.models import MODELS
from lit_gen.models.adversarial import AdversarialModule, Fake
from lit_gen.models.base import Batch, Grid, LossOutput, tiny_config_over
from lit_gen.nets import build_net, validate_net_spec

Tensor = torch.Tensor


@MODELS.register("infogan")
class InfoGAN(AdversarialModule):
    """InfoGAN (Chen et al. 2016): G's input is [z, c] with noise z (latent_dim) and codes c:
    `n_cat` uniform categoricals of `cat_dim` values (one-hot) and `n_cont` U(-1, 1) scalars.
    A Q head on D's features (`discriminator.features`) predicts c: logits for the
    categoricals, a factored Gaussian (mean, log std) for the continuous codes. Both G and
    Q (with D's body) minimise L_I = -E[log Q(c | G(z, c))], weighted by `info_weight`
    (categorical part) and `cont_weight` (continuous part); D's optimizer trains Q.

    `sample_grids()` adds `traversal`: one row per value of the first categorical code,
    columns sweeping the first continuous code over [-2, 2] (`traversal_c<j>` for code j),
    with the noise and the other codes fixed.

    Args:
        n_cat / cat_dim: number and size of the categorical codes (1 x 10 on MNIST).
        n_cont: number of continuous codes (2 on MNIST).
        info_weight / cont_weight: lambda of the categorical / continuous L_I terms.
        q_head: net spec of Q on D's features (a discriminator net, e.g. {name: mlp}).
        n_traversal: columns of the traversal grids.
        **kwargs: see AdversarialModule; latent_dim is the size of the noise z only.
    """

    stackable = False  # labels / heads / shared state: no `seeds` ensembles
    packable = False  # its D reads single samples (labels, heads, reconstructions)

    logged_terms = (*AdversarialModule.logged_terms, "train/info_cat", "train/info_cont",
                    "train/q_cat_acc", "train/g_adv", "train/g_info_cat", "train/g_info_cont")
    grid_names = ("samples", "traversal", "traversal_c1")
    tiny_config = tiny_config_over(AdversarialModule.tiny_config,
                                   params={"q_head": {"name": "mlp", "hidden": [16]}})

    def __init__(self, *, n_cat: int = 1, cat_dim: int = 10, n_cont: int = 2,
                 info_weight: float = 1.0, cont_weight: float = 1.0,
                 q_head: dict | None = None, n_traversal: int = 10, **kwargs):
        if n_cat < 0 or n_cont < 0 or n_cat + n_cont == 0:
            raise ConfigError(f"InfoGAN needs codes: model.params.n_cat={n_cat} and "
                              f"n_cont={n_cont} must be >= 0 with a positive sum")
        if n_cat and cat_dim < 2:
            raise ConfigError(f"model.params.cat_dim must be >= 2, got {cat_dim}")
        self.n_cat, self.cat_dim, self.n_cont = n_cat, cat_dim, n_cont
        self.code_dim = n_cat * cat_dim + n_cont
        self.info_weight, self.cont_weight, self.n_traversal = info_weight, cont_weight, n_traversal
        super().__init__(**kwargs)
        q_spec = q_head or {"name": "mlp", "hidden": [128]}
        validate_net_spec(q_spec, "discriminator", "model.params.q_head")
        self.q_head = build_net(q_spec, "discriminator", "model.params.q_head",
                                in_shape=(self.discriminator.feature_dim,),
                                out_dim=n_cat * cat_dim + 2 * n_cont)
        gen = torch.Generator().manual_seed(self.hparams.seed + 1)
        cat, cont = self._draw_codes(len(self.fixed_noise), gen)
        self.register_buffer("fixed_codes", self._code_vector(cat, cont))

    # --- codes ------------------------------------------------------------------------------
    def _draw_codes(self, n: int, gen: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        device = "cpu" if gen is not None else self.device
        cat = torch.randint(self.cat_dim, (n, self.n_cat), generator=gen, device=device)
        cont = torch.rand(n, self.n_cont, generator=gen, device=device) * 2 - 1
        return cat, cont

    def _code_vector(self, cat: Tensor, cont: Tensor) -> Tensor:
        """(B, n_cat) indices and (B, n_cont) values -> c (B, code_dim)."""
        onehot = F.one_hot(cat, self.cat_dim).float().flatten(1)
        return torch.cat([onehot, cont.float()], 1)

    def split_codes(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """G's input (B, latent_dim + code_dim) -> categorical indices (B, n_cat), continuous
        values (B, n_cont)."""
        c = z[:, self.latent_dim:]
        cat = c[:, : self.n_cat * self.cat_dim].reshape(len(z), self.n_cat, self.cat_dim)
        return cat.argmax(2), c[:, self.n_cat * self.cat_dim:]

    def generator_input_dim(self) -> tuple[int, int]:
        return self.latent_dim + self.code_dim, 0

    def sample_latent(self, n: int) -> Tensor:
        noise = torch.randn(n, self.latent_dim, device=self.device)
        return torch.cat([noise, self._code_vector(*self._draw_codes(n))], 1)

    # --- losses -----------------------------------------------------------------------------
    def discriminator_parameters(self):
        return itertools.chain(self.discriminator.parameters(), self.q_head.parameters())

    def info(self, features: Tensor, z: Tensor) -> InfoTerms:
        """Q's L_I terms for D features (B, F) of images generated from z."""
        q = self.q_head(features)
        n_logits = self.n_cat * self.cat_dim
        logits = q[:, :n_logits].reshape(len(q), self.n_cat, self.cat_dim)
        mean, logstd = q[:, n_logits:].chunk(2, dim=1)
        cat, cont = self.split_codes(z)
        return info_terms(logits, cat, mean, logstd, cont)

    def _info_loss(self, terms: InfoTerms) -> Tensor:
        return self.info_weight * terms.categorical + self.cont_weight * terms.continuous

    def discriminator_loss(self, real: Batch, fake: Fake) -> LossOutput:
        d_real = self.discriminate(real.x)
        h_fake = self.discriminator.features(fake.x)
        d_fake = self.discriminator.head(h_fake).flatten()
        adv = self.adv_loss.d_loss(d_real, d_fake)
        info = self.info(h_fake, fake.z)
        logs = {"d_adv": adv, "d_real": d_real.mean(), "d_fake": d_fake.mean(),
                "info_cat": info.categorical, "info_cont": info.continuous,
                "q_cat_acc": info.accuracy}
        return LossOutput(adv + self._info_loss(info), logs)

    def generator_loss(self, fake: Fake, real: Batch) -> LossOutput:
        h = self.discriminator.features(fake.x)
        adv = self.adv_loss.g_loss(self.discriminator.head(h).flatten())
        info = self.info(h, fake.z)
        return LossOutput(adv + self._info_loss(info), {
            "g_adv": adv, "g_info_cat": info.categorical, "g_info_cont": info.continuous})

    # --- grids ------------------------------------------------------------------------------
    def traversal_latents(self, cont_index: int = 0) -> tuple[Tensor, int]:
        """G inputs (rows * cols, latent_dim + code_dim) for a traversal grid and its nrow.

        Row r sets the first categorical code to r (one row when n_cat = 0); column j sets
        continuous code `cont_index` to linspace(-2, 2)[j] (with n_cont = 0 columns use
        different noise). The noise is fixed_noise[0] and the other codes are 0 (continuous)
        or fixed_codes[0] (categorical)."""
        rows = self.cat_dim if self.n_cat else 1
        cols = self.n_traversal
        z = torch.cat([self.fixed_noise[:1], self.fixed_codes[:1]], 1).repeat(rows * cols, 1)
        if self.n_cont == 0:
            idx = torch.arange(cols, device=z.device) % len(self.fixed_noise)
            z[:, : self.latent_dim] = self.fixed_noise[idx].repeat(rows, 1)
        cont_start = self.latent_dim + self.n_cat * self.cat_dim
        z[:, cont_start:] = 0.0
        if self.n_cont:
            sweep = torch.linspace(-2.0, 2.0, cols, device=z.device)
            z[:, cont_start + cont_index] = sweep.repeat(rows)
        if self.n_cat:
            first = slice(self.latent_dim, self.latent_dim + self.cat_dim)
            z[:, first] = F.one_hot(torch.arange(rows, device=z.device), self.cat_dim).float(
            ).repeat_interleave(cols, 0)
        return z, cols

    @torch.no_grad()
    def sample_grids(self) -> dict[str, Grid]:
        with self.eval_mode():
            z = torch.cat([self.fixed_noise, self.fixed_codes], 1)
            grids = {"samples": Grid(self.decode(z), 8)}
            for j in range(max(self.n_cont, 1)):
                zt, nrow = self.traversal_latents(j)
                grids["traversal" if j == 0 else f"traversal_c{j}"] = Grid(self.decode(zt), nrow)
            return grids
