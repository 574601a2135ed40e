"""The shared base of the encoder/decoder models (VAE, CVAE, WAE, AAE, VAE-GAN).

Holds the nets (encoder = a discriminator net with the right `out_dim`, decoder = a generator
net kept under the name `generator` so EMA and `sample()` work unchanged), conditioning,
and the sample grids: prior samples, reconstructions next to their inputs, and a latent
interpolation.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from lit_gen.models.base import (
    Batch,
    GenerativeModule,
    Grid,
    build_optimizer,
    build_scheduler,
    default_optim,
)
from lit_gen.nets import GENERATORS, build_net

Tensor = torch.Tensor

#: images per grid row for reconstructions (input row, reconstruction row, ...)
RECON_PER_ROW = 8
#: decoded points per interpolation row (both ends included)
INTERP_STEPS = 10


def at_least_fp32(t: Tensor) -> Tensor:
    """fp16/bf16 (autocast) -> fp32 for densities and losses; fp32/fp64 unchanged."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def net_default(spec: dict, registry, arg: str):
    """The value of `arg` in a net spec, or the net class's default when the spec omits it."""
    if arg in spec:
        return spec[arg]
    param = inspect.signature(registry.get(spec["name"], "model.generator.name")).parameters.get(arg)
    return None if param is None else param.default


def interleave_rows(top: Tensor, bottom: Tensor, per_row: int) -> Tensor:
    """Rows of `top` and `bottom` alternating: (N, ...) x 2 -> (2N, ...), N a multiple of per_row."""
    n = len(top) // per_row * per_row
    a = top[:n].reshape(-1, per_row, *top.shape[1:])
    b = bottom[:n].reshape(-1, per_row, *bottom.shape[1:])
    return torch.stack([a, b], 1).reshape(2 * n, *top.shape[1:])


class AutoEncoderModule(GenerativeModule):
    """Base of the models with an encoder E(x[, y]) and a decoder G(z[, y]).

    Args:
        generator: decoder net spec (a generator net of lit_gen.nets).
        encoder: encoder net spec (a discriminator net); its `out_dim` is set by the model
            (2 * latent_dim for a Gaussian encoder, latent_dim for a deterministic one).
        max_epochs: for LR schedules.
    """

    uses_nets: tuple[str, ...] = ("generator", "encoder")
    ddp_find_unused_parameters = False
    #: True: the encoder outputs (mu, logvar) of q(z|x); False: z = E(x) directly
    stochastic_encoder: bool = False
    grid_names = ("samples", "reconstructions", "interpolation")
    tiny_config = {"data": {"name": "digits"},
                   "model": {"latent_dim": 4, "encoder": {"name": "mlp", "hidden": [32]},
                             "generator": {"name": "mlp", "hidden": [32]}}}

    def __init__(self, *, generator: dict | None = None, encoder: dict | None = None,
                 max_epochs: int | None = None, **kwargs):
        super().__init__(**kwargs)
        cond = {"cond_dim": self.num_classes} if self.conditional else {}
        self.generator_spec = dict(generator or {"name": "mlp"})
        self.generator = build_net(self.generator_spec, "generator", "model.generator",
                                   latent_dim=self.latent_dim, out_shape=self.data_shape, **cond)
        out_dim = self.latent_dim * (2 if self.stochastic_encoder else 1)
        self.encoder = build_net(encoder or {"name": "mlp"}, "discriminator", "model.encoder",
                                 in_shape=self.data_shape, out_dim=out_dim, **cond)
        self.setup_ema()

    def generator_out_activation(self) -> str | None:
        return net_default(self.generator_spec, GENERATORS, "out_activation")

    # --- encoding / decoding ----------------------------------------------------------------
    def cond(self, y: Tensor | None) -> Tensor | None:
        """The condition vector the nets take (one-hot labels), None for unconditional models."""
        return self.label_condition(y) if self.conditional and y is not None else None

    def encode(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The encoder's raw output, (B, latent_dim) or (B, 2 * latent_dim)."""
        return self.encoder(x, self.cond(y))

    def posterior(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(mu, logvar) of q(z|x[, y]), each (B, latent_dim) (stochastic encoders only)."""
        mu, logvar = at_least_fp32(self.encode(x, y)).chunk(2, dim=1)
        return mu, logvar

    def encode_mean(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """A point code for x: the posterior mean, or E(x) for deterministic encoders."""
        return self.posterior(x, y)[0] if self.stochastic_encoder else self.encode(x, y)

    def decoder_output(self, z: Tensor, y: Tensor | None = None, net: nn.Module | None = None) -> Tensor:
        """The decoder's raw output (B, *data_shape) (logits or mean); training net by default."""
        return (net or self.generator)(z, self.cond(y))

    def to_data_space(self, out: Tensor) -> Tensor:
        """Decoder output -> data space [-1, 1] (identity unless a likelihood says otherwise)."""
        return out

    def decode(self, z: Tensor, labels: Tensor | None = None, net: nn.Module | None = None) -> Tensor:
        return self.to_data_space(self.decoder_output(z, labels, net or self.sampling_generator()))

    # --- optimizers -------------------------------------------------------------------------
    def make_optimizer(self, params, cfg: dict | None, key: str):
        cfg = cfg or default_optim()
        opt = build_optimizer(list(params), cfg, key)
        return opt, build_scheduler(opt, cfg, self.hparams.max_epochs, key)

    def configure_from(self, *entries) -> tuple[list, list]:
        """`entries` = (params, cfg, key) triples -> (optimizers, schedulers) for Lightning."""
        built = [self.make_optimizer(*e) for e in entries]
        return [o for o, _ in built], [s for _, s in built if s is not None]

    def autoencoder_parameters(self) -> list[nn.Parameter]:
        return [*self.encoder.parameters(), *self.generator.parameters()]

    def batch(self, batch) -> tuple[Tensor, Tensor | None]:
        real = Batch(*batch)
        return real.x, (real.y if self.conditional else None)

    # --- sample grids -------------------------------------------------------------------------
    def grid_batch(self, n: int = 32) -> tuple[Tensor, Tensor] | None:
        """A fixed batch of real images: the first n of the attached datamodule's val split
        (train split when val is empty); None without a datamodule or for 2D toy data."""
        trainer = self._trainer
        dm = getattr(trainer, "datamodule", None) if trainer is not None else None
        if dm is None or not hasattr(dm, "split") or len(self.data_shape) != 3:
            return None
        x, y = dm.split("val")
        if len(x) == 0:
            x, y = dm.split("train")
        return x[:n].to(self.device), y[:n].to(self.device)

    @torch.no_grad()
    def sample_grids(self) -> dict[str, Grid]:
        """samples (prior, one row per class when conditional), reconstructions (rows of
        inputs above rows of their reconstructions) and interpolation (each row decodes
        a straight line between two codes: encoded val images, else fixed prior noise)."""
        grids = super().sample_grids()
        if len(self.data_shape) != 3:
            return grids
        with self.eval_mode():
            real = self.grid_batch()
            if real is not None:
                x, y = real
                y = y if self.conditional else None
                rec = self.decode(self.encode_mean(x, y), y)
                grids["reconstructions"] = Grid(interleave_rows(x, rec, RECON_PER_ROW), RECON_PER_ROW)
                ends, labels = self.encode_mean(x, y), y
            else:
                ends = self.fixed_noise
                labels = self.fixed_labels if self.conditional else None
            rows = min(8, len(ends) // 2)
            t = torch.linspace(0, 1, INTERP_STEPS, device=ends.device).view(1, -1, 1)
            a, b = ends[0:2 * rows:2, None], ends[1:2 * rows:2, None]  # (rows, 1, latent)
            z = ((1 - t) * a + t * b).reshape(rows * INTERP_STEPS, -1)
            lab = labels[0:2 * rows:2].repeat_interleave(INTERP_STEPS) if labels is not None else None
            grids["interpolation"] = Grid(self.decode(z, lab), INTERP_STEPS)
        return grids
