"""`lit_gen.bench figures` and the enlargement of small images (also in training grids)."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from lit_gen import bench
from lit_gen.bench.figures import (
    LABEL_WIDTH,
    PAD,
    gallery_image,
    mean_curve,
    metric_history,
    model_samples,
    to_uint8,
)
from lit_gen.callbacks.samples import enlarge, enlarge_factor, save_grid
from lit_gen.models.base import Grid
from tests.conftest import fit, tiny_overrides


@pytest.mark.parametrize(("side", "factor"), [(8, 8), (16, 4), (28, 3), (32, 2), (64, 1),
                                              (100, 1), (63, 2)])
def test_enlarge_factor(side, factor):
    assert enlarge_factor(side) == factor
    assert side * factor >= 64 and (factor == 1 or side * (factor - 1) < 64)


def test_enlarge_is_nearest_neighbour():
    x = torch.arange(6.0).view(1, 1, 2, 3)
    y = enlarge(x, 2)
    assert y.shape == (1, 1, 4, 6)
    assert y[0, 0].tolist() == [[0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2],
                                [3, 3, 4, 4, 5, 5], [3, 3, 4, 4, 5, 5]]


def test_training_grid_of_16px_images_is_enlarged(tmp_path):
    x = torch.rand(16, 1, 16, 16) * 2 - 1
    path = save_grid(Grid(x, nrow=8), tmp_path / "g.png")
    img = np.asarray(Image.open(path).convert("L"))
    k = 4  # 16 px -> 64 px per image, padding k
    assert img.shape == (2 * 64 + 3 * k, 8 * 64 + 9 * k)
    first = img[k:k + 64, k:k + 64].astype(int)
    expected = ((x[0, 0].clamp(-1, 1) + 1) / 2 * 255 + 0.5).clamp(0, 255).to(torch.uint8)
    assert np.abs(first - enlarge(expected, k).numpy().astype(int)).max() <= 1


def test_metric_history_and_mean_curve(tmp_path):
    with open(tmp_path / "metrics.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "step", "fid", "train/g_loss"])
        w.writerows([[0, 10, "", 0.5], [0, 10, 30.0, ""], [1, 20, 20.0, ""], [1, 20, "", 0.4],
                     [2, 30, "nan", ""]])
    assert metric_history(tmp_path, "fid") == {1: 30.0, 2: 20.0}
    assert metric_history(tmp_path / "none", "fid") == {}
    assert mean_curve([{1: 30.0, 2: 20.0}, {1: 10.0}]) == ([1, 2], [20.0, 20.0])


def test_gallery_rows_of_different_sizes_fill_the_same_cells():
    """8 px and 16 px rows both fill 64 px cells (factors 8 and 4); a 28 px row sets the cell
    to 84 px, in which an 8 px image is enlarged 10x and centred; white around it."""
    g = torch.Generator().manual_seed(0)
    small, large = torch.rand(2, 1, 8, 8, generator=g), torch.rand(3, 1, 16, 16, generator=g)
    img = gallery_image([("a", small), ("bb", large)])
    label_w = LABEL_WIDTH * 2 + 2 * PAD
    assert img.shape == (2 * (64 + PAD) + PAD, label_w + 3 * (64 + PAD), 3)
    for r, (x, k) in enumerate([(small, 8), (large, 4)]):
        for i, want in enumerate(to_uint8(enlarge(x, k))):
            top, left = PAD + r * (64 + PAD), label_w + i * (64 + PAD)
            assert np.array_equal(img[top:top + 64, left:left + 64], want)
    # the first row's third cell is empty: white
    assert (img[PAD:PAD + 64, label_w + 2 * (64 + PAD):][:, :64] == 255).all()
    # hand-checked block: pixel (0, 0) of the first 8 px image is an 8 x 8 block of one value
    block = img[PAD:PAD + 8, label_w:label_w + 8]
    assert (block == block[0, 0]).all() and block[0, 0, 0] == round((float(small[0, 0, 0, 0]) + 1) * 127.5)

    mixed = gallery_image([("a", small[:1]), ("b", torch.rand(1, 1, 28, 28, generator=g))])
    cell = 84  # 28 * 3
    assert mixed.shape[0] == 2 * (cell + PAD) + PAD
    off = (cell - 80) // 2  # 8 px x 10 = 80, centred
    inner = mixed[PAD + off:PAD + off + 80, label_w - LABEL_WIDTH + off:][:, :80]
    assert np.array_equal(inner, to_uint8(enlarge(small[:1], 10))[0])
    assert (mixed[PAD:PAD + off, label_w - LABEL_WIDTH:][:, :cell] == 255).all()


@pytest.mark.slow
def test_figures_from_runs(tmp_path, digits_classifier):
    root = tmp_path / "runs"
    run = root / "dcgan_digits8"
    fit(["conf/experiment/dcgan_digits.yaml"],
        tiny_overrides(run, epochs=2) + ["data.image_size=8", "metrics.names=[fid]",
                                         "metrics.every_n_epochs=1", "metrics.feature_extractor=classifier",
                                         f"metrics.classifier_ckpt={digits_classifier}",
                                         f"metrics.cache_dir={tmp_path / 'cache'}"])
    # a second row made of the same checkpoint under another experiment name: same seed,
    # so its gallery row must be the same pixels
    copy = root / "copy_digits"
    shutil.copytree(run, copy)
    cfg = yaml.safe_load((copy / "config.yaml").read_text())
    cfg["experiment"] = "copy_digits"
    (copy / "config.yaml").write_text(yaml.safe_dump(cfg))
    # a finished run without checkpoint or curve is named, not drawn
    bare = root / "bare_digits"
    bare.mkdir()
    for name in ("config.yaml", "metrics.json", "done.json"):
        shutil.copy(run / name, bare / name)
    cfg["experiment"] = "bare_digits"
    (bare / "config.yaml").write_text(yaml.safe_dump(cfg))

    out = tmp_path / "fig" / "digits"
    assert bench.main(["figures", str(root), "--out", str(out), "--n", "5", "--seed", "3"]) == 0
    gallery = np.asarray(Image.open(out.with_name("digits_gallery.png")).convert("RGB"))
    k, side = 8, 8
    labels = ["copy / digits", "dcgan / digits"]  # sorted rows; bare left out
    label_w = LABEL_WIDTH * max(map(len, labels)) + 2 * PAD
    assert gallery.shape == (2 * (side * k + PAD) + PAD, label_w + 5 * (side * k + PAD), 3)
    expected = to_uint8(enlarge(model_samples(run / "checkpoints" / "last.ckpt", 5, 3), k))
    for r in range(2):
        top = PAD + r * (side * k + PAD)
        for i in range(5):
            left = label_w + i * (side * k + PAD)
            assert np.array_equal(gallery[top:top + 64, left:left + 64], expected[i])
    assert Image.open(out.with_name("digits_curves.png")).size == (800, 500)
    history = metric_history(run, "fid")
    assert sorted(history) == [1, 2] and all(v > 0 for v in history.values())


def test_toy_scatter_one_figure_per_dataset_from_the_seed_0_member(tmp_path, capsys):
    from lit_gen.bench.figures import seed_run, toy_points
    from lit_gen.bench.records import load_records
    from lit_gen.run.checkpoint import load_model

    root = tmp_path / "runs"
    fit(["conf/experiment/gan_ring2d.yaml"], tiny_overrides(root / "gan_ring2d") + ["seeds=[3,0]"])
    fit(["conf/experiment/gan_grid2d.yaml"], tiny_overrides(root / "gan_grid2d"))
    records = load_records(str(root))
    ring = [r for r in records if r.config["data"]["name"] == "ring2d"]
    assert sorted(r.member for r in ring) == [0, 1]
    assert {r.run for r in ring} == {"gan_ring2d"} and [r.run for r in records if r not in ring] == ["gan_grid2d"]
    chosen = seed_run(ring, 0, 50)
    assert chosen.config["seed"] == 0 and chosen.member == 1
    # the points are member 1's samples after manual_seed(seed)
    model = load_model(root / "gan_ring2d" / "checkpoints" / "last.ckpt", member=1)
    torch.manual_seed(5)
    expected = model.sample(50).float()
    assert torch.equal(toy_points(chosen, 50, 5), expected)

    out = tmp_path / "fig" / "toy"
    assert bench.main(["figures", str(root), "--out", str(out), "--points", "200"]) == 0
    for dataset in ("ring2d", "grid2d"):
        image = Image.open(out.with_name(f"toy_scatter_{dataset}.png"))
        assert image.size == (300, 300)  # one 3-inch panel at 100 dpi
    assert not out.with_name("toy_gallery.png").exists()  # toys get scatter plots only
    # the points are kept in the run dir: without checkpoints the same figures come back
    kept = root / "gan_ring2d" / "scatter" / "member1_seed0_n200.npy"
    assert np.load(kept).shape == (200, 2)
    before = {d: out.with_name(f"toy_scatter_{d}.png").read_bytes() for d in ("ring2d", "grid2d")}
    # the table command draws the same panels itself (--scatter), at the protocol's 2,500
    table = tmp_path / "tab" / "toy"
    assert bench.main([str(root), "--over", "seed", "--metrics", "modes_captured", "--scatter",
                       "--out", str(table)]) == 0
    md = table.with_suffix(".md").read_text()
    for dataset in ("grid2d", "ring2d"):
        assert f"![toy_scatter_{dataset}](toy_scatter_{dataset}.png)" in md
    drawn = {d: table.with_name(f"toy_scatter_{d}.png").read_bytes() for d in before}
    for ckpt in root.glob("*/checkpoints/last.ckpt"):
        ckpt.unlink()
    # from the kept points alone: the same figures; a row without them is named in the table
    (root / "gan_grid2d" / "scatter" / "seed0_n2500.npy").unlink()
    assert bench.main([str(root), "--over", "seed", "--metrics", "modes_captured", "--scatter",
                       "--out", str(table)]) == 0
    md = table.with_suffix(".md").read_text()
    assert table.with_name("toy_scatter_ring2d.png").read_bytes() == drawn["ring2d"]
    assert "toy_scatter_grid2d.png" not in md
    assert ("- no panel for gan / grid2d: no checkpoints/last.ckpt and no kept scatter/ points "
            "of seed 0 (2500 points)") in md
    assert bench.main([str(root), "--scatter"]) == 2  # it writes files: --out is needed
    assert "--scatter writes OUT_scatter_<dataset>.png" in capsys.readouterr().err
    assert bench.main(["figures", str(root), "--out", str(out), "--points", "200"]) == 0
    assert {d: out.with_name(f"toy_scatter_{d}.png").read_bytes() for d in before} == before
    # kept points of another size are not these points: the row is left out, named
    assert bench.main(["figures", str(root), "--out", str(tmp_path / "b" / "toy"),
                       "--points", "100"]) == 0
    assert not (tmp_path / "b").exists()
    assert "scatter: no panel for gan / grid2d, gan / ring2d: no checkpoints/last.ckpt" \
        in capsys.readouterr().out
    kept.write_bytes(b"not an array")  # a corrupt record: a clear error, exit 2
    assert bench.main(["figures", str(root), "--out", str(out), "--points", "200"]) == 2
    assert "member1_seed0_n200.npy is not a readable .npy array" in capsys.readouterr().err
    np.save(kept, np.zeros((200, 3), np.float32))
    assert bench.main(["figures", str(root), "--out", str(out), "--points", "200"]) == 2
    assert bench.main(["figures", str(root), "--out", str(out), "--only", "scatter",
                       "--points", "0"]) == 2
