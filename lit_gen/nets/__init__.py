"""Plain nn.Module networks (no Lightning), built by name from `{name: ..., **kwargs}` specs.

Generators are called as `cls(latent_dim=..., out_shape=..., **kwargs)`; discriminators
(also used as encoders) as `cls(in_shape=..., out_dim=..., **kwargs)`; autoencoders (the
discriminators of EBGAN and BEGAN) as `cls(in_shape=..., code_dim=..., **kwargs)`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from lit_gen.errors import ConfigError
from lit_gen.nets.autoencoder import AEOutput, DCGANAutoencoder, MLPAutoencoder
from lit_gen.nets.dcgan import DCGANDiscriminator, DCGANGenerator
from lit_gen.nets.layers import eval_mode
from lit_gen.nets.maxout import MaxoutDiscriminator
from lit_gen.nets.mlp import MLPDiscriminator, MLPGenerator
from lit_gen.registry import Registry, check_kwargs

GENERATORS: Registry[type[nn.Module]] = Registry("generator net")
DISCRIMINATORS: Registry[type[nn.Module]] = Registry("discriminator net")
GENERATORS.add("mlp", MLPGenerator)
GENERATORS.add("dcgan", DCGANGenerator)
DISCRIMINATORS.add("mlp", MLPDiscriminator)
DISCRIMINATORS.add("dcgan", DCGANDiscriminator)
DISCRIMINATORS.add("maxout", MaxoutDiscriminator)
AUTOENCODERS: Registry[type[nn.Module]] = Registry("autoencoder net")
AUTOENCODERS.add("mlp", MLPAutoencoder)
AUTOENCODERS.add("dcgan", DCGANAutoencoder)

ROLES = {"generator": (GENERATORS, ("latent_dim", "out_shape")),
         "discriminator": (DISCRIMINATORS, ("in_shape",)),
         "autoencoder": (AUTOENCODERS, ("in_shape",))}


def _split(spec: Mapping[str, Any] | None, key: str) -> tuple[str, dict[str, Any]]:
    if spec is None or "name" not in spec:
        raise ConfigError(f"{key}.name is missing: give a net name, e.g. {key}: {{name: mlp}}")
    kwargs = {k: v for k, v in dict(spec).items() if k != "name"}
    return str(spec["name"]), kwargs


def validate_net_spec(spec, role: str, key: str) -> None:
    """Fail on an unknown net name or argument before anything is built."""
    registry, reserved = ROLES[role]
    name, kwargs = _split(spec, key)
    check_kwargs(registry.get(name, f"{key}.name"), kwargs, key, reserved=reserved)


def build_net(spec, role: str, key: str | None = None, **fixed) -> nn.Module:
    """Build a net from its spec; `fixed` holds the arguments the model decides (shapes)."""
    key = key or role
    registry, _ = ROLES[role]
    name, kwargs = _split(spec, key)
    overlap = set(kwargs) & set(fixed)
    if overlap:
        raise ConfigError(f"{key}.{sorted(overlap)[0]} is set by the model; remove it from the config")
    return registry.get(name, f"{key}.name")(**fixed, **kwargs)


__all__ = ["AUTOENCODERS", "DISCRIMINATORS", "GENERATORS", "AEOutput", "build_net",
           "eval_mode", "validate_net_spec"]
