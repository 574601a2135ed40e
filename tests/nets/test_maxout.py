"""Maxout layer against its definition; the maxout discriminator and the ALI generator."""

from __future__ import annotations

import pytest
import torch

from lit_gen.errors import ConfigError
from lit_gen.nets import build_net
from lit_gen.nets.maxout import Maxout


@torch.no_grad()
def test_maxout_is_the_max_over_pieces_of_affine_maps():
    torch.manual_seed(0)
    layer = Maxout(3, 4, pieces=5)
    x = torch.randn(7, 3)
    w, b = layer.linear.weight.view(4, 5, 3), layer.linear.bias.view(4, 5)
    # by hand: unit u = max_k (w[u, k] . x + b[u, k])
    expected = torch.stack([torch.stack([x @ w[u, k] + b[u, k] for k in range(5)]).amax(0)
                            for u in range(4)], 1)
    assert layer(x) == pytest.approx(expected, abs=1e-6)
    assert Maxout(3, 4, pieces=1).linear.weight.shape == (4, 3)


@torch.no_grad()
def test_one_piece_maxout_is_linear():
    layer = Maxout(3, 2, pieces=1)
    x = torch.randn(5, 3)
    assert layer(x) == pytest.approx(layer.linear(x), abs=0)


def test_maxout_refuses_zero_pieces():
    with pytest.raises(ConfigError, match="pieces"):
        Maxout(3, 2, pieces=0)


def test_maxout_discriminator_pacgan_shape_and_init():
    torch.manual_seed(0)
    d = build_net({"name": "maxout"}, "discriminator", in_shape=(2 * 4,))  # PacGAN4 input
    assert [m.linear.weight.shape for m in d.body] == [(1000, 8), (1000, 200), (1000, 200)]
    assert d(torch.randn(10, 8)).shape == (10, 1)
    w = torch.cat([m.linear.weight.flatten() for m in d.body])
    assert w.std().item() == pytest.approx(0.02, rel=0.02)
    assert all(m.linear.bias.abs().max() == 0 for m in d.body)


def test_ali_generator_has_no_hidden_biases_and_normal_init():
    torch.manual_seed(0)
    g = build_net({"name": "mlp", "hidden": [400] * 4, "norm": "batch", "out_activation": "none",
                   "bias": False, "init_std": 0.02}, "generator", latent_dim=2, out_shape=(2,))
    linears = [m for m in g.net if isinstance(m, torch.nn.Linear)]
    assert [lin.bias is None for lin in linears] == [True] * 4 + [False]
    assert linears[-1].bias.abs().max() == 0
    assert torch.cat([lin.weight.flatten() for lin in linears]).std().item() == pytest.approx(0.02, rel=0.02)
    assert g(torch.randn(16, 2)).shape == (16, 2)
