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


class Penalty:
    """Base: no loss term, no post-step action."""

    name = ""

    def loss(self, critic: Critic, real: Tensor, fake: Tensor) -> Tensor | None:
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

    def loss(self, critic, real, fake):
        eps = torch.rand(len(real), *([1] * (real.ndim - 1)), device=real.device)
        x_hat = eps * real.detach().float() + (1 - eps) * fake.detach().float()
        return self.weight * (input_gradient_norm(critic, x_hat) - self.target).pow(2).mean()


@PENALTIES.register("dragan")
class DRAGANPenalty(Penalty):
    """DRAGAN (Kodali et al. 2017): the gradient penalty around the data, at
    x_hat = x + alpha * (x_p - x), x_p = x + c * std(x) * U[0, 1), alpha ~ U[0, 1)."""

    name = "dragan"

    def __init__(self, weight: float = 10.0, c: float = 0.5, target: float = 1.0):
        self.weight, self.c, self.target = weight, c, target

    def loss(self, critic, real, fake):
        x = real.detach().float()
        x_p = x + self.c * x.std() * torch.rand_like(x)
        alpha = torch.rand(len(x), *([1] * (x.ndim - 1)), device=x.device)
        x_hat = x + alpha * (x_p - x)
        return self.weight * (input_gradient_norm(critic, x_hat) - self.target).pow(2).mean()


@PENALTIES.register("r1")
class R1Penalty(Penalty):
    """R1 (Mescheder et al. 2018): (gamma / 2) * E_real[||grad D(x)||^2]."""

    name = "r1"

    def __init__(self, gamma: float = 10.0):
        self.gamma = gamma

    def loss(self, critic, real, fake):
        return 0.5 * self.gamma * input_gradient_norm(critic, real).pow(2).mean()


@PENALTIES.register("r2")
class R2Penalty(Penalty):
    """R2 (Mescheder et al. 2018): (gamma / 2) * E_fake[||grad D(x)||^2]."""

    name = "r2"

    def __init__(self, gamma: float = 10.0):
        self.gamma = gamma

    def loss(self, critic, real, fake):
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
