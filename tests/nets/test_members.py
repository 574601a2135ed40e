"""Stacked members: each member computes exactly what its own net computes, on its own chunk."""

from __future__ import annotations

import pytest
import torch

from lit_gen.errors import ConfigError
from lit_gen.nets import build_net
from lit_gen.nets.members import member, stack_members

SPECS = {
    "mlp_g": ({"name": "mlp", "hidden": [16, 16], "norm": "batch", "out_activation": "none"},
              "generator", {"latent_dim": 3, "out_shape": (2,)}, 3),
    "mlp_d": ({"name": "mlp", "hidden": [16, 16], "norm": "none"}, "discriminator",
              {"in_shape": (2,)}, 2),
    "maxout_d": ({"name": "maxout", "hidden": [8, 8], "pieces": 3}, "discriminator",
                 {"in_shape": (4,)}, 4),
}


def nets_for(key: str, seeds=(0, 1, 2)):
    spec, role, fixed, _ = SPECS[key]
    out = []
    for s in seeds:
        torch.manual_seed(s)
        out.append(build_net(spec, role, **fixed))
    return out


@pytest.mark.parametrize("key", sorted(SPECS))
def test_each_member_computes_its_own_net_on_its_chunk(key):
    nets = nets_for(key)
    stacked = stack_members(nets)
    width, b = SPECS[key][3], 5
    x = torch.randn(3 * b, width)
    out = stacked(x)
    for k, net in enumerate(nets):  # train mode: batch norm uses the member's own chunk
        torch.testing.assert_close(out[k * b:(k + 1) * b], net(x[k * b:(k + 1) * b]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("key", sorted(SPECS))
def test_gradient_of_the_summed_losses_is_each_members_own(key):
    nets = nets_for(key)
    stacked = stack_members(nets)
    width, b = SPECS[key][3], 4
    x = torch.randn(3 * b, width)
    out = stacked(x)
    # sum over members of each member's mean loss
    out.view(3, b, -1).square().mean((1, 2)).sum().backward()
    for k, net in enumerate(nets):
        net(x[k * b:(k + 1) * b]).square().mean().backward()
        own = dict(net.named_parameters())
        for name, p in member_grads(stacked, k).items():
            torch.testing.assert_close(p, own[name].grad, atol=1e-5, rtol=0, msg=name)


def member_grads(stacked, k):
    """member k's gradients under the plain net's parameter names."""
    plain = member(stacked, k)
    grads = {}
    for (name, _), (_, sp) in zip(plain.named_parameters(), stacked.named_parameters(), strict=True):
        grads[name] = sp.grad[k]
    return grads


def test_member_k_is_net_k_with_running_statistics():
    nets = nets_for("mlp_g")
    stacked = stack_members(nets)
    x = torch.randn(3 * 8, 3)
    stacked(x)  # one training step of statistics
    for k, net in enumerate(nets):
        net(x[k * 8:(k + 1) * 8])
        plain = member(stacked, k)
        assert type(plain) is type(net)
        ref = net.state_dict()
        got = plain.state_dict()
        assert got.keys() == ref.keys()
        for name in ref:
            torch.testing.assert_close(got[name].float(), ref[name].float(), atol=1e-6, rtol=0, msg=name)
    stacked.eval()
    z = torch.randn(3 * 2, 3)
    ev = stacked(z)
    for k, net in enumerate(nets):
        net.eval()
        torch.testing.assert_close(ev[2 * k:2 * k + 2], net(z[2 * k:2 * k + 2]), atol=1e-5, rtol=0)


def test_same_seed_members_are_identical_and_different_seeds_differ():
    stacked = stack_members(nets_for("mlp_d", seeds=(4, 4, 5)))
    w = next(stacked.parameters())
    assert torch.equal(w[0], w[1]) and not torch.equal(w[0], w[2])


def test_layers_that_cannot_be_stacked_are_refused():
    nets = [build_net({"name": "mlp", "hidden": [8], "norm": "spectral"}, "discriminator",
                      in_shape=(2,)) for _ in range(2)]
    with pytest.raises(ConfigError, match="cannot be stacked"):
        stack_members(nets)
    convs = [build_net({"name": "dcgan", "base_channels": 4}, "discriminator", in_shape=(1, 8, 8))
             for _ in range(2)]
    with pytest.raises(ConfigError, match="Conv2d"):
        stack_members(convs)
