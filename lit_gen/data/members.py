"""The data of an ensemble (config `seeds`): one DataModule per member seed, batched together.

Member k gets exactly the data a plain run of seed k gets with `data.on_device=true`: its own
draw of a seeded dataset (the toy sets), its own split and its own shuffle each epoch. A
training batch is the members' batches concatenated, member k's rows at k*B:(k+1)*B (the
layout lit_gen.nets.members expects). Evaluation reads member 0's splits; there is no
validation loop (sample metrics are computed per member).
"""

from __future__ import annotations

import lightning as L
import torch

from lit_gen.data.base import DataInfo, DeviceBatches, GenerativeDataModule, group_batches


class MemberBatches:
    """The members' DeviceBatches zipped: each batch (x, y) is theirs concatenated."""

    def __init__(self, members: list[DeviceBatches]):
        self.members = members

    def __len__(self) -> int:
        return min(len(m) for m in self.members)

    def set_epoch(self, epoch: int) -> None:
        for m in self.members:
            m.set_epoch(epoch)

    def __iter__(self):
        for parts in zip(*self.members, strict=False):
            xs, ys = zip(*parts, strict=True)
            yield torch.cat(xs), torch.cat(ys)


class MemberDataModule(L.LightningDataModule):
    """One `GenerativeDataModule` per member seed, trained as one batch stream.

    Args:
        members: the members' DataModules (the same `data` config, one seed each).
    """

    def __init__(self, members: list[GenerativeDataModule]):
        super().__init__()
        self.members = members
        self.kind = members[0].kind
        self.cfg = members[0].cfg

    def setup(self, stage: str | None = None) -> None:
        for m in self.members:
            m.setup(stage)

    def info(self) -> DataInfo:
        return self.members[0].info()

    def split(self, name: str):
        return self.members[0].split(name)

    def train_dataloader(self) -> MemberBatches:
        for m in self.members:  # each member's DeviceBatches follows the same trainer
            m.trainer = self.trainer
        return group_batches(MemberBatches([m.device_batches() for m in self.members]),
                             self.cfg.group_batches, self.trainer)

    def skip_batches(self, n: int) -> None:
        """A mid-epoch resume: every member skips the batches done."""
        for m in self.members:
            m.skip_batches(n)

    def val_dataloader(self):
        # an ensemble's validation step would need every member's chunk; its sample metrics
        # (per member) are what it reports
        return []

    def test_dataloader(self):
        self.members[0].trainer = self.trainer
        return self.members[0].test_dataloader()

    def __getattr__(self, name: str):
        # anything else a DataModule offers (toy modes, mode_std, ...) is member 0's
        if name.startswith("_") or name in ("members",):
            raise AttributeError(name)
        members = self.__dict__.get("members")
        if not members:
            raise AttributeError(name)
        return getattr(members[0], name)
