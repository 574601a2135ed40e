"""The shared DataModule: in-memory tensors, a seeded train/val split, batched fetching.

Two training-batch paths: a DataLoader over CPU tensors (default), or, with
`data.on_device=true`, `DeviceBatches` over one copy of the training set on the training
device (no workers, no collate, no host-to-device copy per batch). With
`data.group_batches=K` either path's batches reach Lightning K at a time (`GroupedBatches`).
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from lit_gen.data.binarize import binarization_of, dynamic_binarize
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


def random_hflip(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Flip each image of a (B, C, H, W) batch left-right with probability 1/2, on x's
    device (a `where`, no host sync)."""
    flip = torch.rand(len(x), device=x.device, generator=generator) < 0.5
    return torch.where(flip.view(-1, *([1] * (x.ndim - 1))), x.flip(-1), x)


class TensorPairDataset(Dataset):
    """(x, y) tensors fetched a whole batch at a time (`__getitems__`), no per-item collate.

    Args:
        x: (N, ...) examples; y: (N,) labels.
        hflip: random horizontal flips of fetched images (augmentation; global torch RNG).
        binarize: dynamic binarization, re-drawn at every read (global torch RNG).
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, hflip: bool = False,
                 binarize: bool = False):
        assert len(x) == len(y)
        self.x, self.y, self.hflip, self.binarize = x, y, hflip, binarize

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        x, y = self.__getitems__([i])
        return x[0], y[0]

    def __getitems__(self, idx: list[int]):
        idx_t = torch.as_tensor(idx, dtype=torch.long)
        x = self.x[idx_t]
        x = random_hflip(x) if self.hflip else x
        return (dynamic_binarize(x) if self.binarize else x), self.y[idx_t]


class DeviceBatches:
    """Training batches cut from (x, y) tensors that already live on the training device.

    Each epoch draws one permutation of all N examples from a generator seeded by
    (seed, epoch) on that device: identical on every rank, so under DDP rank r takes
    `perm[r::world_size]` of the first `world_size * (N // world_size)` entries, and the
    shards are disjoint, equal-sized and deterministic. Flips (`hflip`) are drawn on the
    device too, seeded by (seed, epoch, rank). Nothing here reads a device value on the
    host, so iterating never waits for the device.

    The epoch comes from `epoch_fn` when given (the DataModule passes the trainer's current
    epoch: Lightning starts iterating before it calls `set_epoch`, and a resumed run starts
    earlier than an uninterrupted one), else from `set_epoch`.

    Args:
        x: (N, ...) examples on the device; y: (N,) labels on the same device.
        batch_size: examples per batch (per rank).
        shuffle: permute each epoch (else the natural order, no drop_last).
        seed: the run seed.
        rank / world_size: this process's shard.
        hflip: random horizontal flips (augmentation).
        epoch_fn: returns the current epoch (None: the last `set_epoch` value).
        binarize: dynamic binarization of every batch, drawn on the device (seeded like flips).
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, *, shuffle: bool = True,
                 seed: int = 0, rank: int = 0, world_size: int = 1, hflip: bool = False,
                 epoch_fn: Callable[[], int] | None = None,
                 skip_fn: Callable[[], int] | None = None, binarize: bool = False):
        self.skip_fn = skip_fn  # batches the next iteration skips (a mid-epoch resume)
        assert len(x) == len(y) and 0 <= rank < world_size
        self.x, self.y, self.binarize = x, y, binarize
        self.batch_size, self.shuffle, self.seed = batch_size, shuffle, seed
        self.rank, self.world_size, self.hflip = rank, world_size, hflip
        self.epoch_fn = epoch_fn
        self._epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self._epoch = int(epoch)

    @property
    def epoch(self) -> int:
        return self.epoch_fn() if self.epoch_fn is not None else self._epoch

    @property
    def shard_size(self) -> int:
        return len(self.x) // self.world_size

    @property
    def drop_last(self) -> bool:
        return self.shuffle and self.shard_size > self.batch_size

    def __len__(self) -> int:
        n = self.shard_size
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _generator(self, *key: int) -> torch.Generator:
        """A generator on the data's device seeded by (seed, *key)."""
        digest = hashlib.sha256("/".join(map(str, (self.seed, *key))).encode()).digest()
        return torch.Generator(device=self.x.device).manual_seed(
            int.from_bytes(digest[:8], "little") >> 1)

    def indices(self, epoch: int | None = None) -> torch.Tensor:
        """This rank's example indices for an epoch (default: the current one), in batch
        order, on the device."""
        n = len(self.x)
        epoch = self.epoch if epoch is None else epoch
        if self.shuffle:
            order = torch.randperm(n, device=self.x.device, generator=self._generator(epoch))
        else:
            order = torch.arange(n, device=self.x.device)
        return order[: self.shard_size * self.world_size][self.rank::self.world_size]

    def __iter__(self):
        epoch = self.epoch
        order = self.indices(epoch)
        flips = self._generator(epoch, self.rank + 1) if self.hflip else None
        start = self.skip_fn() if self.skip_fn is not None else 0
        if flips is not None and start:  # the flips the skipped batches drew
            torch.rand(start * self.batch_size, device=self.x.device, generator=flips)
        bits = self._generator(epoch, self.rank + 1, "binarize") if self.binarize else None
        for i in range(start, len(self)):
            idx = order[i * self.batch_size:(i + 1) * self.batch_size]
            x = self.x[idx]
            x = random_hflip(x, flips) if flips is not None else x
            yield (dynamic_binarize(x, bits) if bits is not None else x), self.y[idx]


class ResumableDataLoader(DataLoader):
    """A DataLoader whose next iteration can start `skip_fn()` batches in: a run resumed in
    the middle of an epoch (lit_gen.run.signals) continues with the batches the interrupted
    run had not reached (the order is a function of seed and epoch)."""

    def __init__(self, *args, skip_fn: Callable[[], int] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.skip_fn = skip_fn

    def __iter__(self):
        it = super().__iter__()
        for _ in range(self.skip_fn() if self.skip_fn is not None else 0):
            next(it)
        return it


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


@dataclass
class BatchGroup:
    """K consecutive training batches as one Lightning batch (`data.group_batches`): the
    model trains on them in turn (`GenerativeModule.training_step`). Lightning's batch
    `i` of the epoch holds the epoch's batches `i * size + j`, of `epoch_batches` in all."""

    batches: list
    size: int
    epoch_batches: int

    def map(self, fn: Callable) -> BatchGroup:
        """The group with `fn` applied to each batch (device transfer, memory format)."""
        return BatchGroup([fn(b) for b in self.batches], self.size, self.epoch_batches)


class GroupedBatches:
    """The batches of `inner` (a DataLoader, DeviceBatches or MemberBatches), `k` at a time
    as `BatchGroup`s (the epoch's last group may be shorter), the first `limit` of them
    when given (an int `trainer.limit_train_batches` counts the data's batches, as without
    groups). Same batches, same order: Lightning's per-batch work (hooks, progress, fetch)
    is paid once per k of them, which on a tiny model is as much as its step."""

    def __init__(self, inner, k: int, limit: int | None = None):
        self.inner, self.k, self.limit = inner, k, limit

    def epoch_batches(self) -> int:
        n = len(self.inner)
        return n if self.limit is None else min(n, self.limit)

    def __len__(self) -> int:
        return math.ceil(self.epoch_batches() / self.k)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.inner, "set_epoch"):
            self.inner.set_epoch(epoch)

    def __iter__(self):
        total, group = self.epoch_batches(), []
        for batch in itertools.islice(self.inner, total):
            group.append(batch)
            if len(group) == self.k:
                yield BatchGroup(group, self.k, total)
                group = []
        if group:
            yield BatchGroup(group, self.k, total)


def group_batches(batches, k: int, trainer=None):
    """`batches` as Lightning's training batches: as they are (k = 1) or k at a time, an
    int `trainer.limit_train_batches` taken as the number of the data's batches."""
    if k == 1:
        return batches
    limit = getattr(trainer, "limit_train_batches", None)
    return GroupedBatches(batches, k, limit if isinstance(limit, int) else None)


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
        self._skip = 0

    def skip_batches(self, n: int) -> None:
        """The next training iteration starts `n` Lightning batches in (a mid-epoch resume):
        n * data.group_batches of this module's batches."""
        self._skip = int(n) * self.cfg.group_batches

    def _take_skip(self) -> int:
        n, self._skip = self._skip, 0
        return n

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
            if binarization_of(self.cfg) == "threshold":
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

    def _training_device(self) -> tuple[torch.device, int, int]:
        """(device, rank, world size) of the attached Trainer (CPU, 0, 1 without one)."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return torch.device("cpu"), 0, 1
        return trainer.strategy.root_device, trainer.global_rank, trainer.world_size

    def _loader(self, x, y, shuffle: bool, augment: bool = False) -> DataLoader:
        bs = self.cfg.batch_size
        sampler = EpochShuffleSampler(len(x), self.seed, self._current_epoch) if shuffle else None
        extra = {"skip_fn": self._take_skip} if shuffle else {}
        return (ResumableDataLoader if shuffle else DataLoader)(
            TensorPairDataset(x, y, hflip=augment and self.cfg.hflip and x.ndim == 4,
                              binarize=binarization_of(self.cfg) == "dynamic"),
            batch_size=bs,
            sampler=sampler,
            # the iterator draws its worker base seed from this generator, not the global RNG
            generator=torch.Generator().manual_seed(self.seed),
            drop_last=shuffle and len(x) > bs,
            num_workers=self.cfg.num_workers,
            persistent_workers=self.cfg.num_workers > 0,
            collate_fn=collate_batched,
            # page-locked batches make the host-to-GPU copy asynchronous
            pin_memory=self._training_device()[0].type == "cuda",
            **extra,
        )

    def device_batches(self) -> DeviceBatches:
        """The training set on the training device, batched there (`data.on_device=true`)."""
        self.setup()
        device, rank, world_size = self._training_device()
        if getattr(self, "_device_train", None) is None or self._device_train[0].device != device:
            self._device_train = (self.x_train.to(device), self.y_train.to(device))
        x, y = self._device_train
        if len(x) < world_size:
            raise DataError(f"data.on_device: {len(x)} training examples cannot be shared by "
                            f"{world_size} processes; use more data")
        return DeviceBatches(x, y, self.cfg.batch_size, shuffle=True, seed=self.seed, rank=rank,
                             world_size=world_size, hflip=self.cfg.hflip and x.ndim == 4,
                             epoch_fn=self._current_epoch, skip_fn=self._take_skip,
                             binarize=binarization_of(self.cfg) == "dynamic")

    def train_dataloader(self):
        self.setup()
        k, world_size = self.cfg.group_batches, self._training_device()[2]
        if k > 1 and world_size > 1:
            raise DataError(f"data.group_batches={k} trains in one process, this run has "
                            f"{world_size}: set data.group_batches=1 for multi-device runs")
        if self.cfg.on_device:
            return group_batches(self.device_batches(), k, self.trainer)
        return group_batches(self._loader(self.x_train, self.y_train, shuffle=True, augment=True),
                             k, self.trainer)

    def val_dataloader(self) -> DataLoader:
        self.setup()
        if len(self.x_val) == 0:
            return []
        return self._loader(self.x_val, self.y_val, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        x, y = self.split("test")
        return self._loader(x, y, shuffle=False)
