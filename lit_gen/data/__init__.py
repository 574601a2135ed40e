"""DataModules by name (`data.name`)."""

from lit_gen.data import digits, image_folder, synthetic, torchvision_sets, toy
from lit_gen.data.base import DataInfo, GenerativeDataModule
from lit_gen.registry import Registry

DATASETS: Registry[type[GenerativeDataModule]] = Registry("dataset")
for _module in (toy, digits, torchvision_sets, image_folder, synthetic):
    _module.register(DATASETS)


def build_datamodule(cfg, seed: int = 0) -> GenerativeDataModule:
    """The DataModule for the `data` config section."""
    return DATASETS.get(cfg.name, "data.name")(cfg, seed=seed)


__all__ = ["DATASETS", "DataInfo", "GenerativeDataModule", "build_datamodule"]
