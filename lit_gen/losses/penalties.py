"""Discriminator regularisers, combined by config: `penalties: [{name: gp, weight: 10}, ...]`.

A penalty either adds a term to D's loss (`loss`) or acts on D after its optimizer step
(`after_step`, e.g. weight clipping). Gradient terms run in fp32 outside autocast, so they
stay correct under mixed precision and grad scaling.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from lit_gen.registry import Registry

Tensor = torch.Tensor
Critic = Callable[[Tensor], Tensor]  # x (B, ...) -> scores (B,)

PENALTIES: Registry[type[Penalty]] = Registry("penalty")


def input_gradient_norm(critic: Critic, x: Tensor) -> Tensor:
    """||d critic(x) / dx||_2 per example, (B,), with a graph for double backprop.

    The critic runs in fp32 with autocast off (fp16 gradients of gradients underflow), and
    eagerly even when its net is compiled (`model.compile`): torch.compile's autograd
    does not support double backward.
    """
    x = x.detach().float().requires_grad_(True)
    device_type = x.device.type
    with torch.autocast(device_type=device_type, enabled=False), \
            torch.compiler.set_stance("force_eager"):
        scores = critic(x).float()
        # inside the block too: with create_graph the backward ops are ordinary ops, which
        # an enclosing autocast would run in bf16/fp16
        (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
        return grad.flatten(1).norm(2, dim=1)


class Draws:
    """The randomness and batch statistics a penalty takes. A plain run (and a 1-member
    ensemble): torch's global stream and the whole batch. An ensemble of M members (config
    `seeds`): the batch is M equal chunks, one per member, and member k's rows draw from its
    own stream (`rngs[k]`) and see only its chunk's statistics, so a member trains as it
    would alone."""

    def __init__(self, rngs: list[torch.Generator] | None = None):
        self.rngs = rngs or None

    def draw(self, fn, n: int, *shape: int, **kwargs) -> Tensor:
        """fn(rows, *shape) (torch.rand, torch.randn) for n rows: member k's n / M rows from
        its own stream."""
        if self.rngs is None:
            return fn(n, *shape, **kwargs)
        return torch.cat([fn(n // len(self.rngs), *shape, generator=g, **kwargs)
                          for g in self.rngs])

    def rand(self, x: Tensor, per_example: bool = False) -> Tensor:
        """U[0, 1) shaped like x, or (B, 1, ...) with one value per example."""
        shape = [1] * (x.ndim - 1) if per_example else list(x.shape[1:])
        return self.draw(torch.rand, len(x), *shape, dtype=x.dtype, device=x.device)

    def std(self, x: Tensor) -> Tensor:
        """The sample std of the batch's values; in an ensemble, of each member's chunk, as a
        (B, 1, ...) column."""
        if self.rngs is None:
            return x.std()
        m = len(self.rngs)
        return x.reshape(m, -1).std(dim=1).repeat_interleave(len(x) // m).reshape(
            len(x), *([1] * (x.ndim - 1)))


PLAIN = Draws()


class Penalty:
    """Base: no loss term, no post-step action."""

    name = ""

    def loss(self, critic: Critic, real: Tensor, fake: Tensor,
             draws: Draws = PLAIN) -> Tensor | None:
        return None

    def after_step(self, discriminator: nn.Module) -> None:
        return None


@PENALTIES.register("gp")
class GradientPenalty(Penalty):
    """WGAN-GP (Gulrajani et al. 2017): weight * E[(||grad D(x_hat)|| - target)^2], with
    x_hat uniformly interpolated between paired real and fake examples."""

    name = "gp"

    def __init__(self, weight: float = 10.0, target: float = 1.0):
        self.weight, self.target = weight, target

    def loss(self, critic, real, fake, draws=PLAIN):
        real, fake = real.detach().float(), fake.detach().float()
        eps = draws.rand(real, per_example=True)
        x_hat = eps * real + (1 - eps) * fake
        return self.weight * (input_gradient_norm(critic, x_hat) - self.target).pow(2).mean()


@PENALTIES.register("dragan")
class DRAGANPenalty(Penalty):
    """DRAGAN (Kodali et al. 2017): the gradient penalty around the data, at
    x_hat = x + alpha * (x_p - x), x_p = x + c * std(x) * U[0, 1), alpha ~ U[0, 1)."""

    name = "dragan"

    def __init__(self, weight: float = 10.0, c: float = 0.5, target: float = 1.0):
        self.weight, self.c, self.target = weight, c, target

    def loss(self, critic, real, fake, draws=PLAIN):
        x = real.detach().float()
        x_p = x + self.c * draws.std(x) * draws.rand(x)
        alpha = draws.rand(x, per_example=True)
        x_hat = x + alpha * (x_p - x)
        return self.weight * (input_gradient_norm(critic, x_hat) - self.target).pow(2).mean()


@PENALTIES.register("r1")
class R1Penalty(Penalty):
    """R1 (Mescheder et al. 2018): (gamma / 2) * E_real[||grad D(x)||^2]."""

    name = "r1"

    def __init__(self, gamma: float = 10.0):
        self.gamma = gamma

    def loss(self, critic, real, fake, draws=PLAIN):
        return 0.5 * self.gamma * input_gradient_norm(critic, real).pow(2).mean()


@PENALTIES.register("r2")
class R2Penalty(Penalty):
    """R2 (Mescheder et al. 2018): (gamma / 2) * E_fake[||grad D(x)||^2]."""

    name = "r2"

    def __init__(self, gamma: float = 10.0):
        self.gamma = gamma

    def loss(self, critic, real, fake, draws=PLAIN):
        return 0.5 * self.gamma * input_gradient_norm(critic, fake).pow(2).mean()


@PENALTIES.register("clip")
class WeightClipping(Penalty):
    """WGAN (Arjovsky et al. 2017): clamp every D weight to [-clip_value, clip_value]
    after each D step."""

    name = "clip"

    def __init__(self, clip_value: float = 0.01):
        self.clip_value = clip_value

    @torch.no_grad()
    def after_step(self, discriminator):
        for p in discriminator.parameters():
            p.clamp_(-self.clip_value, self.clip_value)
