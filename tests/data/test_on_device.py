"""`data.on_device=true`: batches cut on the training device, shuffled by (seed, epoch),
sharded across DDP ranks; random flips; the synthetic image set."""

from __future__ import annotations

import json

import pytest
import torch

from lit_gen import validation
from lit_gen.data import build_datamodule
from lit_gen.data.base import DeviceBatches, random_hflip
from tests.conftest import ROOT, fit, run_cli, tiny_overrides

DCGAN = ROOT / "conf" / "experiment" / "dcgan_digits.yaml"


def labelled(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x[i] is a constant image of value i, y[i] = i: a batch shows which examples it holds."""
    return torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 2, 2).clone(), \
        torch.arange(n)


def batch_ids(batches) -> list[list[int]]:
    out = []
    for x, y in batches:
        assert torch.equal(x[:, 0, 0, 0].long(), y)  # images and labels stay paired
        out.append(y.tolist())
    return out


def test_one_epoch_covers_each_example_once_in_full_batches():
    x, y = labelled(10)
    db = DeviceBatches(x, y, 3, seed=5)
    ids = batch_ids(db)
    assert len(db) == len(ids) == 3 and all(len(b) == 3 for b in ids)  # drop_last: 10 -> 9
    flat = sum(ids, [])
    assert len(set(flat)) == 9 and set(flat) <= set(range(10))
    assert flat != sorted(flat)  # shuffled


def test_order_is_a_function_of_seed_and_epoch():
    x, y = labelled(32)
    a, b, c = (DeviceBatches(x, y, 8, seed=s) for s in (1, 1, 2))
    assert batch_ids(a) == batch_ids(b)
    assert batch_ids(a) != batch_ids(c)
    first = batch_ids(a)
    a.set_epoch(1)
    assert batch_ids(a) != first
    a.set_epoch(0)
    assert batch_ids(a) == first
    d = DeviceBatches(x, y, 8, seed=1, epoch_fn=lambda: 1)  # the trainer's epoch wins
    d.set_epoch(0)
    a.set_epoch(1)
    assert batch_ids(d) == batch_ids(a)


@pytest.mark.parametrize("n,world", [(20, 2), (21, 2), (30, 3)])
def test_ranks_take_disjoint_equal_shards(n, world):
    x, y = labelled(n)
    shards = []
    for rank in range(world):
        db = DeviceBatches(x, y, 2, seed=0, rank=rank, world_size=world)
        db.set_epoch(4)
        shards.append(sum(batch_ids(db), []))
    per_rank = n // world
    assert all(len(s) == (per_rank // 2) * 2 for s in shards)  # equal batch counts: no DDP hang
    union = set().union(*map(set, shards))
    assert sum(len(s) for s in shards) == len(union)  # disjoint
    full = [DeviceBatches(x, y, 2, seed=0, rank=r, world_size=world).indices(4) for r in range(world)]
    assert sorted(torch.cat(full).tolist()) == sorted(set(torch.cat(full).tolist()))
    assert len(torch.cat(full)) == per_rank * world


def test_unshuffled_batches_keep_order_and_the_remainder():
    x, y = labelled(7)
    assert batch_ids(DeviceBatches(x, y, 3, shuffle=False)) == [[0, 1, 2], [3, 4, 5], [6]]


def test_random_hflip_flips_about_half_of_the_images():
    x = torch.arange(400 * 3 * 4, dtype=torch.float32).view(400, 1, 3, 4)
    out = random_hflip(x, torch.Generator().manual_seed(0))
    same = (out == x).flatten(1).all(1)
    flipped = (out == x.flip(-1)).flatten(1).all(1)
    assert torch.all(same ^ flipped)  # each image is itself or its mirror image
    assert 0.4 < flipped.float().mean().item() < 0.6
    x2, y2 = labelled(16)
    db = DeviceBatches(x2, y2, 4, seed=0, hflip=True)
    assert sorted(sum(batch_ids(db), [])) == sorted(set(sum(batch_ids(db), [])))


def test_datamodule_serves_device_batches_and_flips():
    cfg = validation.load([str(DCGAN)], ["data.on_device=true", "data.hflip=true", "data.limit=64",
                                     "data.batch_size=16"])
    dm = build_datamodule(cfg.data, seed=cfg.seed)
    loader = dm.train_dataloader()
    assert isinstance(loader, DeviceBatches) and len(loader) == 4 and loader.hflip
    x, y = next(iter(loader))
    assert x.shape == (16, 1, 16, 16) and y.shape == (16,)
    cfg.data.on_device = False
    assert not isinstance(build_datamodule(cfg.data, seed=cfg.seed).train_dataloader(), DeviceBatches)


def test_training_with_on_device_data_follows_seed_and_epoch(tmp_path):
    """A fit with data.on_device draws exactly DeviceBatches(seed, epoch)'s batches."""
    import lightning as L

    seen: dict[int, list[torch.Tensor]] = {}

    class Record(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            seen.setdefault(trainer.current_epoch, []).append(batch[1].clone())

    from lit_gen import fit as fit_mod

    cfg = validation.load([str(DCGAN)], tiny_overrides(tmp_path / "r", epochs=2) + [
        "data.on_device=true", "model.generator.base_channels=8",
        "model.discriminator.base_channels=8"])
    original = fit_mod.build_callbacks
    fit_mod.build_callbacks = lambda c, d: [*original(c, d), Record()]
    try:
        fit_mod.run(cfg)
    finally:
        fit_mod.build_callbacks = original
    dm = build_datamodule(cfg.data, seed=cfg.seed)
    dm.setup()
    for epoch in (0, 1):
        ref = DeviceBatches(dm.x_train, dm.y_train, 16, seed=cfg.seed)
        ref.set_epoch(epoch)
        expected = [y for _, y in ref][:6]
        assert len(seen[epoch]) == 6
        assert all(torch.equal(a, b) for a, b in zip(seen[epoch], expected))
    assert not torch.equal(seen[0][0], seen[1][0])
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["epoch"] == 2 and metrics["g_step"] == 12


@pytest.mark.slow
def test_on_device_data_under_ddp(tmp_path):
    run_dir = tmp_path / "run"
    overrides = [o for o in tiny_overrides(run_dir, epochs=2) if not o.startswith("trainer.devices")]
    proc = run_cli("lit_gen.fit", "--config", str(DCGAN), *overrides, "data.on_device=true",
                   "trainer.devices=2", "trainer.strategy=ddp", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["ddp_world_size"] == 2 and metrics["ddp_ranks_identical"] == 1
    assert metrics["epoch"] == 2


def test_synthetic_images():
    cfg = validation.load([], ["data.name=synthetic", "data.image_size=32", "data.channels=3",
                           "data.n_samples=50", "data.val_fraction=0.2"])
    dm = build_datamodule(cfg.data, seed=3)
    dm.setup()
    assert dm.info().shape == (3, 32, 32) and dm.info().num_classes == 10
    assert dm.x_train.shape == (40, 3, 32, 32) and dm.x_val.shape == (10, 3, 32, 32)
    assert dm.split("test")[0].shape == (10, 3, 32, 32)
    assert -1.0 <= dm.x_train.min() < -0.99 and 0.99 < dm.x_train.max() <= 1.0
    assert abs(dm.x_train.mean().item()) < 0.02
    again = build_datamodule(cfg.data, seed=3)
    again.setup()
    assert torch.equal(again.x_train, dm.x_train)


def test_resume_with_on_device_data_equals_uninterrupted(tmp_path):
    from lit_gen.run.checkpoint import read_checkpoint

    extra = ["trainer.deterministic=true", "data.on_device=true", "data.hflip=true",
             "model.generator.base_channels=8", "model.discriminator.base_channels=8"]
    full, split = tmp_path / "full", tmp_path / "split"
    fit([DCGAN], tiny_overrides(full, epochs=2) + extra)
    fit([DCGAN], tiny_overrides(split, epochs=1) + extra)
    one = read_checkpoint(split / "checkpoints" / "last.ckpt")["state_dict"]
    fit([DCGAN], tiny_overrides(split, epochs=2) + extra + ["resume=last"])
    a = read_checkpoint(full / "checkpoints" / "last.ckpt")["state_dict"]
    b = read_checkpoint(split / "checkpoints" / "last.ckpt")["state_dict"]
    gen = [k for k in a if k.startswith("generator.")]
    assert gen and all(torch.equal(a[k], b[k]) for k in gen)
    assert any(not torch.equal(one[k], b[k]) for k in gen)
