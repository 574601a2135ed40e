"""Ensembles of identical nets trained as one: M members, each on its own chunk of the batch.

`stack_members([net_0, ..., net_{M-1}])` returns one net of the same class whose Linear and
BatchNorm1d layers hold all M members' parameters stacked on a leading dimension. It takes
a batch of M*B rows, member k's B rows at k*B:(k+1)*B, and sends chunk k through member k
only (one batched matmul per layer instead of M small ones). Members share no parameter
and no batch statistic, so the gradient of the sum of the members' losses with respect to
member k's parameters is exactly member k's own gradient: an optimizer with elementwise
updates (Adam, SGD) trains the M members independently. `member(stacked, k)` gives member
k back as a plain net (sampling, evaluation, export).

Supported layers: Linear, BatchNorm1d, Maxout (through its Linear) and parameter-free
modules (activations, dropout, reshapes). Anything else with parameters is refused.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from lit_gen.errors import ConfigError


class MemberLinear(nn.Module):
    """M Linear layers: x (M*B, in) -> (M*B, out), rows of member k through layer k.

    Args:
        layers: the members' nn.Linear layers, all of the same shape.
    """

    def __init__(self, layers: list[nn.Linear]):
        super().__init__()
        self.members = len(layers)
        # (M, out, in) and (M, out): nn.Linear's layout with a member dimension in front
        self.weight = nn.Parameter(torch.stack([lin.weight.detach() for lin in layers]).clone())
        has_bias = layers[0].bias is not None
        self.bias = nn.Parameter(torch.stack([lin.bias.detach() for lin in layers]).clone()) \
            if has_bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.members == 1:  # nn.Linear's own kernel: a 1-member net computes bit for bit
            return F.linear(x, self.weight[0], None if self.bias is None else self.bias[0])
        xb = x.reshape(self.members, -1, x.shape[-1])  # (M, B, in)
        w = self.weight.transpose(1, 2)  # (M, in, out)
        out = torch.bmm(xb, w) if self.bias is None else torch.baddbmm(self.bias[:, None], xb, w)
        return out.reshape(-1, out.shape[-1])  # (M*B, out)

    def member(self, k: int) -> nn.Linear:
        out_f, in_f = self.weight.shape[1:]
        lin = nn.Linear(in_f, out_f, bias=self.bias is not None)
        with torch.no_grad():
            lin.weight.copy_(self.weight[k])
            if self.bias is not None:
                lin.bias.copy_(self.bias[k])
        return lin


class MemberBatchNorm1d(nn.Module):
    """M BatchNorm1d layers: x (M*B, C), statistics of each member over its own B rows.

    Args:
        layers: the members' nn.BatchNorm1d layers (affine, tracking running statistics).
    """

    def __init__(self, layers: list[nn.BatchNorm1d]):
        super().__init__()
        first = layers[0]
        if not (first.affine and first.track_running_stats):
            raise ConfigError("members: BatchNorm1d without affine parameters or running "
                              "statistics is not supported")
        self.members, self.eps, self.momentum = len(layers), first.eps, first.momentum
        self.weight = nn.Parameter(torch.stack([bn.weight.detach() for bn in layers]).clone())
        self.bias = nn.Parameter(torch.stack([bn.bias.detach() for bn in layers]).clone())
        self.register_buffer("running_mean", torch.stack([bn.running_mean for bn in layers]).clone())
        self.register_buffer("running_var", torch.stack([bn.running_var for bn in layers]).clone())
        self.register_buffer("num_batches_tracked", first.num_batches_tracked.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m, c = self.weight.shape
        # (M*B, C) -> (B, M*C): one batch_norm call whose channels are (member, channel)
        xb = x.reshape(m, -1, c).transpose(0, 1).reshape(-1, m * c)
        if self.training:
            self.num_batches_tracked.add_(1)
        out = F.batch_norm(xb, self.running_mean.view(-1), self.running_var.view(-1),
                           self.weight.view(-1), self.bias.view(-1), self.training,
                           self.momentum, self.eps)
        return out.reshape(-1, m, c).transpose(0, 1).reshape(-1, c)

    def member(self, k: int) -> nn.BatchNorm1d:
        bn = nn.BatchNorm1d(self.weight.shape[1], eps=self.eps, momentum=self.momentum)
        with torch.no_grad():
            bn.weight.copy_(self.weight[k])
            bn.bias.copy_(self.bias[k])
            bn.running_mean.copy_(self.running_mean[k])
            bn.running_var.copy_(self.running_var[k])
            bn.num_batches_tracked.copy_(self.num_batches_tracked)
        return bn


MEMBER_LAYERS: dict[type[nn.Module], type[nn.Module]] = {
    nn.Linear: MemberLinear, nn.BatchNorm1d: MemberBatchNorm1d}


def _replace(template: nn.Module, nets: list[nn.Module], prefix: str = "") -> None:
    for name, child in list(template.named_children()):
        path = f"{prefix}{name}"
        peers = [dict(n.named_modules())[path] for n in nets]
        kind = MEMBER_LAYERS.get(type(child))
        if kind is not None:
            setattr(template, name, kind(peers))
        elif any(True for _ in child.parameters(recurse=False)) or \
                hasattr(child, "parametrizations"):
            raise ConfigError(f"members: layer '{path}' ({type(child).__name__}) cannot be "
                              f"stacked; supported: {', '.join(t.__name__ for t in MEMBER_LAYERS)} "
                              "and parameter-free modules (use an MLP or maxout net without "
                              "spectral/layer norm)")
        else:
            _replace(child, nets, f"{path}.")


def stack_members(nets: list[nn.Module]) -> nn.Module:
    """One net holding `nets` (same architecture) as members; see the module docstring."""
    if not nets:
        raise ConfigError("members: need at least one net")
    template = copy.deepcopy(nets[0])
    _replace(template, nets)
    template.members = len(nets)
    return template


def member(stacked: nn.Module, k: int) -> nn.Module:
    """Member k of a stacked net as a plain net (a copy)."""
    plain = copy.deepcopy(stacked)

    def swap(module: nn.Module) -> None:
        for name, child in list(module.named_children()):
            if isinstance(child, MemberLinear | MemberBatchNorm1d):
                setattr(module, name, child.member(k))
            else:
                swap(child)

    swap(plain)
    if hasattr(plain, "members"):
        del plain.members
    return plain
