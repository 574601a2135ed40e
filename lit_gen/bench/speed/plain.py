"""The plain-PyTorch side of the in-process benchmark: the training steps a careful user
writes by hand with lit_gen's nets, losses and optimizers, and the loop that times them.

Each function's docstring names the lit_gen loop it is the counterpart of.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import torch

from lit_gen.bench.speed.measure import StepWindow
from lit_gen.bench.speed.settings import Settings, TrainCase
from lit_gen.errors import ConfigError


class Amp:
    """autocast (+ GradScaler for fp16 on CUDA) as a plain loop would use it; on CPU,
    16-mixed becomes bf16-mixed as Lightning does."""

    def __init__(self, precision: str, device: torch.device):
        precision = str(precision)
        self.dtype = None
        if precision in ("bf16-mixed", "bf16"):
            self.dtype = torch.bfloat16
        elif precision in ("16-mixed", "16"):
            self.dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
        elif precision not in ("32-true", "32"):
            raise ConfigError(f"--precision: the plain loop supports 32-true, bf16-mixed and "
                              f"16-mixed, got '{precision}'")
        self.device = device
        self.scaler = torch.amp.GradScaler("cuda") if self.dtype is torch.float16 else None

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def step(self, loss: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        opt.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            opt.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(opt)
            self.scaler.update()


def plain_batches(dm, s: Settings, case: TrainCase, device: torch.device):
    """The batches a plain loop draws: lit_gen's batched dataset through a DataLoader (page-
    locked on CUDA), or index into the training set held on the device."""
    from torch.utils.data import DataLoader

    from lit_gen.data.base import TensorPairDataset, collate_batched

    x, y = dm.x_train, dm.y_train
    if case.batches == "dataloader":
        yield from DataLoader(TensorPairDataset(x, y), batch_size=s.batch_size, shuffle=True,
                              drop_last=True, collate_fn=collate_batched,
                              pin_memory=device.type == "cuda")
        return
    xd, yd = x.to(device), y.to(device)
    perm = torch.randperm(len(xd), device=device)
    for i in range(len(xd) // s.batch_size):
        idx = perm[i * s.batch_size:(i + 1) * s.batch_size]
        yield xd[idx], yd[idx]


def prepare_nets(s: Settings, device: torch.device, *nets: torch.nn.Module) -> None:
    for net in nets:
        net.to(device)
        if s.channels_last:
            net.to(memory_format=torch.channels_last)
        if s.compile:
            net.compile()


def to_input(x: torch.Tensor, s: Settings, device: torch.device) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    if s.channels_last and x.ndim == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def lit_gen_optimizer(params, cfg: dict, key: str) -> torch.optim.Optimizer:
    """lit_gen's own optimizer builder (the in-process plain loop runs next to Lightning
    anyway; the whole-process plain script builds torch's optimizers itself)."""
    from lit_gen.models.optim import build_optimizer

    return build_optimizer(params, cfg, key)


class PlainSetup:
    """A hand-written training step: its nets, optimizers and `step(i, x, update) -> loss`,
    where `update(loss, opt)` zeroes, back-propagates and steps (the plain loop's `Amp.step`,
    or Lightning's manual optimization in the bare-Lightning reference)."""

    def __init__(self, nets: list[torch.nn.Module], optimizers: list[torch.optim.Optimizer],
                 step: Callable[[int, torch.Tensor, Callable], torch.Tensor],
                 shape: tuple[int, ...]):
        self.nets, self.optimizers, self.step = nets, optimizers, step
        self.shape = tuple(shape)  # one example's shape


def timed_loop(cfg, s: Settings, case: TrainCase, device: torch.device, dm,
               setup: PlainSetup) -> dict[str, float]:
    """Run the setup's step over the plain loop's batches inside the timing window, reading
    the loss on the host every `log_every_n_steps` batches as a user's loop would.

    Counterpart of `lightning.Trainer.fit` as `lit_gen.fit` drives it (over
    `GenerativeDataModule.train_dataloader`, logging every `log_every_n_steps`)."""
    window = StepWindow(s.warmup, s.steps, device)
    log_every = cfg.trainer.log_every_n_steps
    amp = Amp(s.precision, device)
    host_logs = []
    for i, (x, _) in enumerate(plain_batches(dm, s, case, device)):
        with amp.autocast():
            loss = setup.step(i, to_input(x, s, device), amp.step)
        if (i + 1) % log_every == 0:
            host_logs.append(loss.item())
        window.batch_end(i)
        if i + 1 == window.total:
            break
    return window.seconds


def plain_gan(cfg, s: Settings, device: torch.device, shape: tuple[int, ...],
              make_optimizer: Callable | None = None) -> PlainSetup:
    """The GAN step a PyTorch user would write: one D step per batch (adversarial loss +
    penalties), a G step every n_critic batches with D frozen (called under autocast when
    the precision asks; penalties turn it off for their fp32 part as in lit_gen).

    Counterpart of `lit_gen.models.adversarial.AdversarialModule.train_batch` (the one
    GAN loop: its D step, `n_critic`, the G step with D frozen)."""
    from lit_gen.config import to_container
    from lit_gen.losses import LOSSES, PENALTIES
    from lit_gen.nets import build_net

    build_optimizer = make_optimizer or lit_gen_optimizer
    m = cfg.model
    torch.manual_seed(cfg.seed)
    gen = build_net(m.generator, "generator", latent_dim=m.latent_dim, out_shape=shape)
    disc = build_net(m.discriminator, "discriminator", in_shape=shape)
    prepare_nets(s, device, gen, disc)
    opt_g = build_optimizer(gen.parameters(), to_container(m.g_optim), "model.g_optim")
    opt_d = build_optimizer(disc.parameters(), to_container(m.d_optim), "model.d_optim")
    adv = LOSSES.get(m.loss)
    penalties = [PENALTIES.get(p["name"])(**{k: v for k, v in p.items() if k != "name"})
                 for p in to_container(m.penalties)]

    def step(i: int, x: torch.Tensor, update: Callable) -> torch.Tensor:
        n = len(x)
        with torch.no_grad():
            fake = gen(torch.randn(n, m.latent_dim, device=device))
        d_real, d_fake = disc(x).flatten(), disc(fake).flatten()
        loss_d = adv.d_loss(d_real, d_fake)
        for p in penalties:
            term = p.loss(lambda v: disc(v).flatten(), x, fake)
            if term is not None:
                loss_d = loss_d + term
        update(loss_d, opt_d)
        for p in penalties:
            p.after_step(disc)
        if (i + 1) % m.n_critic == 0:
            disc.requires_grad_(False)
            loss_g = adv.g_loss(disc(gen(torch.randn(n, m.latent_dim, device=device))).flatten())
            update(loss_g, opt_g)
            disc.requires_grad_(True)
        return loss_d

    return PlainSetup([gen, disc], [opt_g, opt_d], step, shape)


def plain_vae(cfg, s: Settings, device: torch.device, shape: tuple[int, ...],
              make_optimizer: Callable | None = None) -> PlainSetup:
    """A VAE step (Kingma & Welling 2014): Gaussian encoder with out_dim 2 * latent, decoder
    logits (Bernoulli) or mean (Gaussian with fixed std), one Adam over both nets; the same
    likelihoods and KL as lit_gen's VAE (lit_gen.losses.vae), computed in fp32.

    Counterpart of `lit_gen.models.vae.VAE.train_batch` (its ELBO terms and one optimizer
    step over encoder and decoder)."""
    from lit_gen.config import to_container
    from lit_gen.losses.vae import LIKELIHOODS, gaussian_kl, reparameterize
    from lit_gen.nets import build_net

    build_optimizer = make_optimizer or lit_gen_optimizer

    m = cfg.model
    params = dict(m.params or {})
    likelihood = LIKELIHOODS.get(params.get("likelihood", "bernoulli"))
    log_std = math.log(float(params.get("decoder_std", 0.1)))
    beta = float(params.get("beta", 1.0))
    torch.manual_seed(cfg.seed)
    enc = build_net(m.encoder, "discriminator", in_shape=shape, out_dim=2 * m.latent_dim)
    dec = build_net(m.generator, "generator", latent_dim=m.latent_dim, out_shape=shape)
    prepare_nets(s, device, enc, dec)
    opt = build_optimizer([*enc.parameters(), *dec.parameters()], to_container(m.g_optim),
                          "model.g_optim")

    def step(i: int, x: torch.Tensor, update: Callable) -> torch.Tensor:
        mu, logvar = enc(x).float().chunk(2, dim=1)
        z = reparameterize(mu, logvar)
        out = dec(z)
        log_px = likelihood.log_prob(x.flatten(1).float(), out.flatten(1).float(), log_std)
        kl = gaussian_kl(mu, logvar)
        loss = -log_px.mean() + beta * kl.mean()
        update(loss, opt)
        return loss

    return PlainSetup([enc, dec], [opt], step, shape)


#: the plain step of each model family (`model.name`)
PLAIN_STEPS = {"gan": plain_gan, "vae": plain_vae}


def plain_setup(cfg, s: Settings, device: torch.device, shape: tuple[int, ...],
                make_optimizer: Callable | None = None) -> PlainSetup:
    if cfg.model.name not in PLAIN_STEPS:
        raise ConfigError(f"the plain loop has no step for model '{cfg.model.name}'; "
                          f"valid: {', '.join(PLAIN_STEPS)}")
    return PLAIN_STEPS[cfg.model.name](cfg, s, device, shape, make_optimizer)


def run_plain(cfg, s: Settings, case: TrainCase, device: torch.device, dm) -> dict[str, float]:
    setup = plain_setup(cfg, s, device, tuple(dm.info().shape))
    return timed_loop(cfg, s, case, device, dm, setup)
