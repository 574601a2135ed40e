"""Models by name (`model.name`). GAN variants that differ only by loss, penalty or nets are
configs of `gan` (conf/model/*.yaml); structurally different models are classes here."""

from __future__ import annotations

from typing import Any

from lit_gen.config import ModelConfig, schema_fields, to_container
from lit_gen.errors import ConfigError
from lit_gen.losses import LOSSES, PENALTIES
from lit_gen.models.adversarial import AdversarialModule, Fake
from lit_gen.models.base import (
    MODELS,
    Batch,
    GenerativeModule,
    Grid,
    LossOutput,
    check_model_params,
)
from lit_gen.nets import validate_net_spec
from lit_gen.registry import check_kwargs

MODELS.add("gan", AdversarialModule)

NET_ROLES = {"generator": "generator", "discriminator": "discriminator",
             "encoder": "discriminator"}
COMMON = set(schema_fields(ModelConfig)) - {"name", "params"}


def from_run(cfg) -> dict[str, Any]:
    """Model arguments taken from outside the model section (a model receives the ones its
    constructor names): the seed, grid size, schedule length, clipping, data.binarize and
    the non-finite policy."""
    return {"seed": cfg.seed, "n_grid": cfg.run.n_grid, "max_epochs": cfg.trainer.max_epochs,
            "gradient_clip_val": cfg.trainer.gradient_clip_val,
            "gradient_clip_algorithm": cfg.trainer.gradient_clip_algorithm,
            "binarize": cfg.data.binarize, "on_nonfinite": cfg.run.on_nonfinite,
            "members": None if cfg.seeds is None else list(cfg.seeds)}


FROM_RUN = {"data_info", "seed", "n_grid", "max_epochs", "gradient_clip_val",
            "gradient_clip_algorithm", "binarize", "on_nonfinite", "members"}


def validate_model_config(m) -> None:
    cls = MODELS.get(m.name, "model.name")
    check_model_params(cls, dict(m.params), COMMON | FROM_RUN)
    roles = {**NET_ROLES, **cls.net_roles}
    for net in cls.uses_nets:
        if m[net] is None:
            raise ConfigError(f"model '{m.name}' needs model.{net}: give a net spec, "
                              f"e.g. model.{net}={{name: mlp}}")
        validate_net_spec(m[net], roles[net], f"model.{net}")
    names = cls.hparam_names()
    if "loss" in names:
        LOSSES.get(m.loss, "model.loss")
    if "penalties" in names:
        for i, p in enumerate(m.penalties):
            if "name" not in p:
                raise ConfigError(f"model.penalties[{i}] needs a name; valid: "
                                  f"{', '.join(PENALTIES.names())}")
            pen = PENALTIES.get(p["name"], f"model.penalties[{i}].name")
            check_kwargs(pen.__init__, {k: v for k, v in p.items() if k != "name"},
                         f"model.penalties[{i}]")


def model_kwargs(cfg, data_info: dict) -> dict[str, Any]:
    """The constructor arguments of the configured model class, from the whole config."""
    m = cfg.model
    cls = MODELS.get(m.name, "model.name")
    names = cls.hparam_names()
    container = to_container(m)
    kwargs: dict[str, Any] = {k: container[k] for k in COMMON if k in names}
    kwargs.update(container["params"])
    extra = {"data_info": data_info, **from_run(cfg)}
    kwargs.update({k: v for k, v in extra.items() if k in names})
    return kwargs


def build_model(cfg, data_info: dict) -> GenerativeModule:
    """The LightningModule for a validated config and the data's `DataInfo.as_dict()`; it
    keeps the resolved config (`run_config`) for its checkpoints."""
    cls = MODELS.get(cfg.model.name, "model.name")
    model = cls(**model_kwargs(cfg, data_info))
    model.run_config = to_container(cfg)
    return model


def _register_zoo() -> None:
    """Import the model files so their @MODELS.register decorators run."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        if info.name not in ("base", "adversarial"):
            importlib.import_module(f"{__name__}.{info.name}")


_register_zoo()

__all__ = ["MODELS", "AdversarialModule", "Batch", "Fake", "GenerativeModule", "Grid",
           "LossOutput", "build_model", "validate_model_config"]
