"""Nets: output shapes for every supported size and channel count, norms, conditioning."""

from __future__ import annotations

import pytest
import torch

from lit_gen.errors import ConfigError
from lit_gen.nets import build_net
from lit_gen.nets.layers import n_resolution_levels


@pytest.mark.parametrize("size, expected", [(8, (1, 4)), (16, (2, 4)), (28, (2, 7)),
                                            (32, (3, 4)), (64, (4, 4)), (14, (1, 7))])
def test_resolution_levels(size, expected):
    assert n_resolution_levels(size) == expected


@pytest.mark.parametrize("size", [8, 16, 28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("norm", ["batch", "spectral", "layer", "none"])
def test_dcgan_shapes(size, channels, norm):
    shape = (channels, size, size)
    g = build_net({"name": "dcgan", "base_channels": 8, "norm": "batch" if norm == "spectral" else norm},
                  "generator", latent_dim=5, out_shape=shape)
    d = build_net({"name": "dcgan", "base_channels": 8, "norm": norm}, "discriminator",
                  in_shape=shape, out_dim=3)
    x = g(torch.randn(4, 5))
    assert x.shape == (4, *shape)
    assert x.abs().max() <= 1.0
    assert d(x).shape == (4, 3)
    assert d.features(x).shape == (4, d.feature_dim)


def test_spectral_norm_bounds_layer_gain():
    d = build_net({"name": "mlp", "hidden": [32], "norm": "spectral"}, "discriminator", in_shape=(10,))
    d.train()
    for _ in range(30):  # power iterations converge during forward passes
        d(torch.randn(8, 10))
    d.eval()
    w = d.body[0].weight
    assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, rel=0.05)


def test_mlp_conditioning_changes_output():
    g = build_net({"name": "mlp", "hidden": [16], "norm": "none"}, "generator", latent_dim=3,
                  out_shape=(2,), cond_dim=4)
    z = torch.randn(5, 3)
    a = g(z, torch.eye(4)[[0] * 5])
    b = g(z, torch.eye(4)[[1] * 5])
    assert a.shape == (5, 2) and not torch.allclose(a, b)
    d = build_net({"name": "dcgan", "base_channels": 4}, "discriminator", in_shape=(1, 8, 8),
                  cond_dim=4)
    assert d(torch.randn(5, 1, 8, 8), torch.eye(4)[[2] * 5]).shape == (5, 1)


def test_bad_net_arguments():
    with pytest.raises(ConfigError, match="square images"):
        build_net({"name": "dcgan"}, "generator", latent_dim=2, out_shape=(1, 8, 16))
    with pytest.raises(ConfigError, match="cannot be halved"):
        build_net({"name": "dcgan"}, "generator", latent_dim=2, out_shape=(1, 9, 9))
    with pytest.raises(ConfigError, match="unknown norm 'group'"):
        build_net({"name": "mlp", "norm": "group"}, "discriminator", in_shape=(2,))
    with pytest.raises(ConfigError, match="set by the model"):
        build_net({"name": "mlp", "latent_dim": 3}, "generator", latent_dim=2, out_shape=(2,))
