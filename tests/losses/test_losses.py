"""Adversarial losses and D penalties against values computed by hand / numpy, two-sided."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lit_gen.losses import LOSSES, PENALTIES, input_gradient_norm
from lit_gen.losses.penalties import Draws

REAL = torch.tensor([2.0, -1.0, 0.5])
FAKE = torch.tensor([-0.5, 1.5, 0.0])


def np_softplus(x):
    return np.log1p(np.exp(x))


def test_loss_registry_names():
    assert LOSSES.names() == ["hinge", "least_squares", "minimax", "nonsaturating", "wasserstein"]


@pytest.mark.parametrize("name", ["minimax", "nonsaturating"])
def test_bce_discriminator_loss(name):
    r, f = REAL.numpy(), FAKE.numpy()
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    expected = -np.mean(np.log(sig(r))) - np.mean(np.log(1 - sig(f)))
    assert LOSSES.get(name).d_loss(REAL, FAKE).item() == pytest.approx(expected, rel=1e-6)


def test_generator_losses_by_hand():
    f = FAKE.numpy()
    sig = 1 / (1 + np.exp(-f))
    assert LOSSES.get("minimax").g_loss(FAKE).item() == pytest.approx(np.mean(np.log(1 - sig)), rel=1e-6)
    assert LOSSES.get("nonsaturating").g_loss(FAKE).item() == pytest.approx(-np.mean(np.log(sig)), rel=1e-6)
    # least squares: 0.5 * mean((f - 1)^2) = 0.5 * (2.25 + 0.25 + 1) / 3
    assert LOSSES.get("least_squares").g_loss(FAKE).item() == pytest.approx(0.5 * 3.5 / 3)
    assert LOSSES.get("wasserstein").g_loss(FAKE).item() == pytest.approx(-1.0 / 3)
    assert LOSSES.get("hinge").g_loss(FAKE).item() == pytest.approx(-1.0 / 3)


def test_discriminator_losses_by_hand():
    # least squares: 0.5 * (mean((r-1)^2) + mean(f^2)) = 0.5 * ((1 + 4 + 0.25)/3 + (0.25 + 2.25 + 0)/3)
    assert LOSSES.get("least_squares").d_loss(REAL, FAKE).item() == pytest.approx(0.5 * (5.25 + 2.5) / 3)
    # wasserstein: mean(f) - mean(r) = 1/3 - 0.5
    assert LOSSES.get("wasserstein").d_loss(REAL, FAKE).item() == pytest.approx(1 / 3 - 0.5)
    # hinge: mean(relu(1 - r)) + mean(relu(1 + f)) = (0 + 2 + 0.5)/3 + (0.5 + 2.5 + 1)/3
    assert LOSSES.get("hinge").d_loss(REAL, FAKE).item() == pytest.approx(2.5 / 3 + 4.0 / 3)


def linear_critic(w: torch.Tensor):
    return lambda x: x.flatten(1) @ w


@pytest.mark.parametrize("w", [[3.0, 4.0], [0.6, 0.8], [0.1, -0.2]])
def test_gradient_penalty_of_linear_critic(w):
    """For D(x) = w.x the gradient is w everywhere: gp = weight * (||w|| - 1)^2 exactly."""
    w = torch.tensor(w)
    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    norm = math.hypot(*w.tolist())
    gp = PENALTIES.get("gp")(weight=10.0).loss(linear_critic(w), real, fake)
    assert gp.item() == pytest.approx(10.0 * (norm - 1.0) ** 2, rel=1e-5, abs=1e-9)
    dragan = PENALTIES.get("dragan")(weight=3.0).loss(linear_critic(w), real, fake)
    assert dragan.item() == pytest.approx(3.0 * (norm - 1.0) ** 2, rel=1e-5, abs=1e-9)
    r1 = PENALTIES.get("r1")(gamma=4.0).loss(linear_critic(w), real, fake)
    assert r1.item() == pytest.approx(0.5 * 4.0 * norm**2, rel=1e-5)
    r2 = PENALTIES.get("r2")(gamma=2.0).loss(linear_critic(w), real, fake)
    assert r2.item() == pytest.approx(norm**2, rel=1e-5)


def test_gradient_penalty_of_quadratic_critic():
    """D(x) = 0.5 ||x||^2 has gradient x; with real = fake the interpolate is x itself."""
    x = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
    critic = lambda v: 0.5 * v.pow(2).sum(1)  # noqa: E731
    gp = PENALTIES.get("gp")(weight=1.0).loss(critic, x, x.clone())
    assert gp.item() == pytest.approx(((5 - 1) ** 2 + (2 - 1) ** 2) / 2)
    norms = input_gradient_norm(critic, x)
    assert norms.tolist() == pytest.approx([5.0, 2.0])


def test_gradient_penalty_backpropagates_into_critic_weights():
    w = torch.tensor([3.0, 4.0], requires_grad=True)
    gp = PENALTIES.get("gp")(weight=1.0).loss(linear_critic(w), torch.randn(4, 2), torch.randn(4, 2))
    gp.backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w|| = 2 * 4 * w / 5
    assert w.grad.tolist() == pytest.approx([8 * 3 / 5, 8 * 4 / 5], rel=1e-5)


def test_gradient_penalty_under_bf16_autocast_matches_fp32():
    w = torch.tensor([0.3, -1.7])
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    torch.manual_seed(0)
    ref = PENALTIES.get("gp")().loss(linear_critic(w), real, fake)
    torch.manual_seed(0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        amp = PENALTIES.get("gp")().loss(linear_critic(w), real, fake)
    assert amp.dtype == torch.float32
    assert amp.item() == pytest.approx(ref.item(), rel=1e-6)


def test_weight_clipping_after_step():
    d = torch.nn.Linear(4, 3)
    with torch.no_grad():
        d.weight.copy_(torch.linspace(-1, 1, 12).view(3, 4))
    assert PENALTIES.get("clip")(clip_value=0.05).loss(None, None, None) is None
    PENALTIES.get("clip")(clip_value=0.05).after_step(d)
    assert d.weight.max().item() == pytest.approx(0.05)
    assert d.weight.min().item() == pytest.approx(-0.05)
    assert d.bias.abs().max().item() <= 0.05 + 1e-7


@pytest.mark.parametrize("name", ["gp", "dragan"])
def test_ensemble_penalty_draws_each_members_stream_over_its_own_chunk(name):
    """A 2-member batch (two chunks of 6): each chunk's draws come from its member's stream
    and DRAGAN's std from its chunk alone, so the ensemble's penalty is the mean of the
    members' penalties computed one by one (and a member's does not see the other's data)."""
    critic = lambda v: 0.5 * v.pow(2).sum(1) + v[:, 0]  # noqa: E731  (gradient x + e1)
    penalty = PENALTIES.get(name)(weight=2.0)
    real = torch.cat([torch.randn(6, 2), 10 * torch.randn(6, 2)])  # very different spreads
    fake = torch.randn(12, 2)
    rngs = [torch.Generator().manual_seed(s) for s in (3, 4)]
    both = penalty.loss(critic, real, fake, Draws(rngs))
    alone = [penalty.loss(critic, real[k * 6:(k + 1) * 6], fake[k * 6:(k + 1) * 6],
                          Draws([torch.Generator().manual_seed(s)]))
             for k, s in enumerate((3, 4))]
    assert both.item() == pytest.approx((alone[0].item() + alone[1].item()) / 2, rel=1e-6)
    # and member 0's term does not move when member 1's data does
    moved = real.clone()
    moved[6:] *= 3
    again = penalty.loss(critic, moved, fake, Draws([torch.Generator().manual_seed(s)
                                                       for s in (3, 4)]))
    other = penalty.loss(critic, moved[6:], fake[6:], Draws([torch.Generator().manual_seed(4)]))
    assert again.item() == pytest.approx((alone[0].item() + other.item()) / 2, rel=1e-6)


def test_draws_of_a_plain_run_are_the_global_stream_and_whole_batch():
    x = torch.randn(10, 3)
    torch.manual_seed(0)
    got = (Draws().rand(x), Draws().rand(x, per_example=True))
    torch.manual_seed(0)
    assert torch.equal(got[0], torch.rand_like(x)) and torch.equal(got[1], torch.rand(10, 1))
    assert torch.equal(Draws().std(x), x.std())
    two = Draws([torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)])
    stds = two.std(x)
    assert stds.shape == (10, 1)
    assert torch.allclose(stds[:5], x[:5].std().expand(5, 1))
    assert torch.allclose(stds[5:], x[5:].std().expand(5, 1))
