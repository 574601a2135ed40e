"""The shared DataModule: in-memory tensors, a seeded train/val split, batched fetching."""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from lit_gen.errors import DataError


@dataclass(frozen=True)
class DataInfo:
    """What a model needs to know about its data before seeing any of it."""

    name: str
    kind: str  # "image" or "toy"
    shape: tuple[int, ...]  # one example: (C, H, W) for images, (2,) for toy sets
    num_classes: int  # 0 when the data carries no labels

    def as_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "shape": list(self.shape),
                "num_classes": self.num_classes}


class TensorPairDataset(Dataset):
    """(x, y) tensors fetched a whole batch at a time (`__getitems__`), no per-item collate."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor):
        assert len(x) == len(y)
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.x[i], self.y[i]

    def __getitems__(self, idx: list[int]):
        idx_t = torch.as_tensor(idx, dtype=torch.long)
        return self.x[idx_t], self.y[idx_t]


class EpochShuffleSampler(Sampler[int]):
    """A random permutation that is a function of (seed, epoch) only.

    Lightning creates the first epoch's iterator before `on_train_epoch_start`, and a
    resumed run creates it earlier than an uninterrupted one; seeding the order from the
    epoch number (read from the trainer when attached) makes both see the same batches.
    Under DDP Lightning wraps this sampler and gives each rank a disjoint shard of it.
    """

    def __init__(self, n: int, seed: int, epoch_fn=None):
        self.n, self.seed, self.epoch_fn, self.epoch = n, seed, epoch_fn, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        epoch = self.epoch_fn() if self.epoch_fn is not None else self.epoch
        gen = torch.Generator().manual_seed(self.seed * 100003 + epoch)
        return iter(torch.randperm(self.n, generator=gen).tolist())


def collate_batched(batch):
    """The dataset already returns a batch; keep it as (x, y)."""
    return batch


def to_unit_range(x_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return x_uint8.float().div_(127.5).sub_(1.0)


def resize_images(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """(N, C, H, W) float -> (N, C, size, size), antialiased; unchanged when size is None."""
    if size is None or x.shape[-1] == size and x.shape[-2] == size:
        return x
    out = []
    for chunk in x.split(4096):
        out.append(torch.nn.functional.interpolate(
            chunk, size=(size, size), mode="bilinear", align_corners=False, antialias=True))
    return torch.cat(out).clamp_(-1.0, 1.0)


class GenerativeDataModule(L.LightningDataModule):
    """Base DataModule: subclasses implement `load()` and `info()`; this class does the rest.

    Args:
        cfg: the `data` section of the config (see lit_gen.config.DataConfig).
        seed: seeds the train/val split (and toy data generation).
    """

    kind = "image"

    def __init__(self, cfg, seed: int = 0):
        super().__init__()
        self.cfg = cfg
        self.seed = seed
        self._loaded = False

    # --- to implement -------------------------------------------------------------------
    def load(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(x_train, y_train, x_test, y_test); x float32 in [-1, 1]; test may be None."""
        raise NotImplementedError

    def info(self) -> DataInfo:
        raise NotImplementedError

    # --- shared -------------------------------------------------------------------------
    def _postprocess(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "image":
            x = resize_images(x, self.cfg.image_size)
            if self.cfg.binarize:
                x = torch.where(x > 0, 1.0, -1.0)
        return x.contiguous()

    def setup(self, stage: str | None = None) -> None:
        if self._loaded:
            return
        x, y, x_test, y_test = self.load()
        x = self._postprocess(x)
        if x_test is not None:
            x_test = self._postprocess(x_test)
        n = len(x)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))
        n_val = int(round(n * self.cfg.val_fraction))
        val_idx, train_idx = perm[:n_val].sort().values, perm[n_val:].sort().values
        if self.cfg.limit is not None:
            train_idx = train_idx[: self.cfg.limit]
        if len(train_idx) == 0:
            raise DataError(f"data '{self.cfg.name}' has no training examples left after the split")
        self.x_train, self.y_train = x[train_idx], y[train_idx]
        self.x_val, self.y_val = x[val_idx], y[val_idx]
        self.x_test, self.y_test = x_test, y_test
        self._loaded = True

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The examples of one split ("train", "val" or "test")."""
        self.setup()
        if name == "train":
            return self.x_train, self.y_train
        if name == "val":
            return self.x_val, self.y_val
        if name == "test":
            if self.x_test is None:
                raise DataError(f"data '{self.cfg.name}' has no test split; use 'train' or 'val'")
            return self.x_test, self.y_test
        raise DataError(f"unknown split '{name}'; valid splits: train, val, test")

    def _current_epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    def _loader(self, x, y, shuffle: bool) -> DataLoader:
        bs = self.cfg.batch_size
        sampler = EpochShuffleSampler(len(x), self.seed, self._current_epoch) if shuffle else None
        return DataLoader(
            TensorPairDataset(x, y),
            batch_size=bs,
            sampler=sampler,
            # the iterator draws its worker base seed from this generator, not the global RNG
            generator=torch.Generator().manual_seed(self.seed),
            drop_last=shuffle and len(x) > bs,
            num_workers=self.cfg.num_workers,
            persistent_workers=self.cfg.num_workers > 0,
            collate_fn=collate_batched,
        )

    def train_dataloader(self) -> DataLoader:
        self.setup()
        return self._loader(self.x_train, self.y_train, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        self.setup()
        if len(self.x_val) == 0:
            return []
        return self._loader(self.x_val, self.y_val, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        x, y = self.split("test")
        return self._loader(x, y, shuffle=False)
