"""`python -m lit_gen.bench figures RUNS_DIR_OR_SWEEP ... --out PREFIX [--metric fid]`

The pictures of a benchmark table, from the same run dirs and rows as `lit_gen.bench`:

- `PREFIX_gallery.png`: one row of `--n` samples per table row, from the checkpoint
  (checkpoints/last.ckpt) of the row's first finished run, every model drawn after
  `torch.manual_seed(--seed)` (models with the same latent size get the same latents;
  conditional models draw labels 0, 1, 2, ...), enlarged nearest-neighbour to at least 64 px
  per image (rows of smaller images to the same cell size) and labelled with the row's name;
- `PREFIX_curves.png`: `--metric` against training epochs for every row (mean over its
  runs at each epoch), from the values evaluated during training (metrics.csv; set
  `metrics.every_n_epochs` in the runs), log scale;
- `PREFIX_scatter_<dataset>.png` (2D toy data, `--only scatter` or the default when the runs
  are toys): one panel per row, `--points` samples of the row's run with training seed
  `--seed` (an ensemble's member of that seed), drawn after `torch.manual_seed(--seed)`,
  over the data's mode centres and their 3-std circles (what `high_quality_pct` counts).
  Each panel's points are kept in its run dir (`scatter/[memberK_]seedS_nN.npy`, 20 KB), so
  the plot redraws from the run records once the checkpoints are gone.

A row without a checkpoint or without evaluations during training is named on stdout and
left out of that picture. The PNGs carry no timestamp: the same runs give the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from lit_gen.bench.records import FINISHED, RunRecord, group_value, load_records
from lit_gen.callbacks.samples import enlarge, enlarge_factor
from lit_gen.data import DATASETS, build_datamodule
from lit_gen.data.toy import ToyDataModule
from lit_gen.errors import ConfigError, cli_main
from lit_gen.run.checkpoint import load_model
from lit_gen.run.dir import CHECKPOINTS_DIR, LAST_CHECKPOINT

METRICS_CSV = "metrics.csv"  # written by the run's CSV logger (lit_gen.run.loggers)
SCATTER_DIR = "scatter"  # a toy run's kept scatter points (figures.points_file)
SCATTER_POINTS, SCATTER_SEED = 2500, 0  # a panel: the short protocol's 2,500 samples, seed 0
PAD = 2  # pixels between images in the gallery
LABEL_WIDTH = 8  # pixels per character of a row label (PIL's default bitmap font is 6)


def png_metadata() -> dict[str, str]:
    """No timestamp, and the plotting library's version: the same records and version give
    byte-identical PNGs (tests/bench/test_committed_tables.py compares them)."""
    import matplotlib

    return {"Software": f"matplotlib {matplotlib.__version__}"}


def group_rows(records: list[RunRecord], group_by: list[str]) -> dict[str, list[RunRecord]]:
    """Row label ("dcgan / fashion_mnist") -> its finished local runs, sorted by name."""
    rows: dict[str, list[RunRecord]] = {}
    for r in records:
        if r.status == FINISHED and r.path is not None:
            label = " / ".join(str(group_value(r.config, k)) for k in group_by)
            rows.setdefault(label, []).append(r)
    return {k: sorted(v, key=lambda r: r.name) for k, v in sorted(rows.items())}


# --- metric curves ------------------------------------------------------------------------

def metric_history(run_dir: Path, metric: str) -> dict[int, float]:
    """Epochs done -> the metric's value logged at the end of that epoch (metrics.csv; a
    resumed run's repeated epochs keep the last value)."""
    path = run_dir / METRICS_CSV
    if not path.is_file():
        return {}
    out: dict[int, float] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            value, epoch = row.get(metric) or "", row.get("epoch") or ""
            if value and epoch:
                v = float(value)
                if math.isfinite(v):
                    out[int(float(epoch)) + 1] = v  # Lightning logs the 0-based epoch
    return out


def mean_curve(histories: list[dict[int, float]]) -> tuple[list[int], list[float]]:
    """(epochs, mean over the runs that have that epoch)."""
    epochs = sorted({e for h in histories for e in h})
    return epochs, [float(np.mean([h[e] for h in histories if e in h])) for e in epochs]


def plot_curves(rows: dict[str, list[RunRecord]], metric: str, path: Path) -> list[str]:
    """Draw the curves; returns the labels of rows without any evaluation during training."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    missing = []
    for i, (label, runs) in enumerate(rows.items()):
        histories = [h for h in (metric_history(r.path, metric) for r in runs) if h]
        if not histories:
            missing.append(label)
            continue
        epochs, values = mean_curve(histories)
        style = ("-", "--", ":", "-.")[(i // 10) % 4]  # 10 colours per line style
        ax.plot(epochs, values, style, marker="o", markersize=3,
                label=f"{label} (n={len(histories)})")
    ax.set_xlabel("training epochs")
    ax.set_ylabel(metric)
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    if len(rows) > len(missing):
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata=png_metadata())
    plt.close(fig)
    return missing


# --- the gallery ---------------------------------------------------------------------------

def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W, 3) uint8."""
    x = ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x.permute(0, 2, 3, 1).numpy()


@torch.no_grad()
def model_samples(ckpt: Path, n: int, seed: int) -> torch.Tensor:
    """(n, C, H, W) samples of a checkpoint's model after torch.manual_seed(seed)."""
    model = load_model(ckpt, "cpu")
    labels = torch.arange(n) % model.num_classes if model.conditional else None
    torch.manual_seed(seed)
    return model.sample(n, labels)


def gallery_image(rows: list[tuple[str, torch.Tensor]]) -> np.ndarray:
    """One labelled row of samples per entry, in cells of one size: the largest
    `side * enlarge_factor(side)` of the rows. Each row is enlarged nearest-neighbour by the
    largest integer factor that fits its images in a cell (8 px and 16 px rows both fill
    64 px cells, an 8 px pixel a block twice the side of a 16 px one) and centred in it, so
    rows of different resolutions are compared at the same size. (H, W, 3) uint8, white
    ground."""
    from PIL import Image, ImageDraw

    cell = max(x.shape[-1] * enlarge_factor(x.shape[-1]) for _, x in rows)
    label_w = LABEL_WIDTH * max(len(label) for label, _ in rows) + 2 * PAD
    row_h = cell + PAD
    n = max(len(x) for _, x in rows)
    canvas = np.full((row_h * len(rows) + PAD, label_w + n * (cell + PAD), 3), 255, np.uint8)
    for r, (_, x) in enumerate(rows):
        imgs = to_uint8(enlarge(x, max(1, cell // max(x.shape[-2:]))))
        for i, img in enumerate(imgs):
            top = PAD + r * row_h + (cell - img.shape[0]) // 2
            left = label_w + i * (cell + PAD) + (cell - img.shape[1]) // 2
            canvas[top:top + img.shape[0], left:left + img.shape[1]] = img
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    for r, (label, _) in enumerate(rows):
        draw.text((PAD, PAD + r * row_h + max(0, (cell - 11) // 2)), label, fill=(0, 0, 0))
    return np.asarray(image)


def draw_gallery(rows: dict[str, list[RunRecord]], n: int, seed: int, path: Path) -> list[str]:
    """Write the gallery; returns the labels of rows with no checkpoint."""
    from PIL import Image

    drawn, missing = [], []
    for label, runs in rows.items():
        ckpts = [r.path / CHECKPOINTS_DIR / LAST_CHECKPOINT for r in runs]
        ckpts = [c for c in ckpts if c.is_file()]
        if not ckpts:
            missing.append(label)
            continue
        x = model_samples(ckpts[0], n, seed)
        if x.ndim != 4:
            raise ConfigError(f"figures: row {label} is not an image model (samples of shape "
                              f"{tuple(x.shape)}); a gallery needs images")
        drawn.append((label, x))
    if drawn:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(gallery_image(drawn)).save(path)
    return missing


# --- toy scatter plots ----------------------------------------------------------------------

def points_file(record: RunRecord, n: int, seed: int) -> Path:
    """Where a panel's points are kept in the run dir (a 20 KB run record: the scatter plot
    redraws from the records alone once the checkpoints are gone)."""
    k = record.member
    return record.path / SCATTER_DIR / f"{'' if k is None else f'member{k}_'}seed{seed}_n{n}.npy"


def seed_run(runs: list[RunRecord], seed: int, n: int) -> RunRecord | None:
    """The row's run trained with `seed` that has a checkpoint or kept points; else its first
    with one."""
    def drawable(r):
        return (r.path / CHECKPOINTS_DIR / LAST_CHECKPOINT).is_file() or \
            points_file(r, n, seed).is_file()

    usable = [r for r in runs if drawable(r)]
    same = [r for r in usable if r.config.get("seed") == seed]
    return (same or usable or [None])[0]


@torch.no_grad()
def toy_points(record: RunRecord, n: int, seed: int) -> torch.Tensor:
    """(n, 2) samples of a toy run's generator (its ensemble member, if it is one), drawn
    after `torch.manual_seed(seed)` from its checkpoint and kept in `points_file`; without a
    checkpoint, the kept points."""
    ckpt, kept = record.path / CHECKPOINTS_DIR / LAST_CHECKPOINT, points_file(record, n, seed)
    if not ckpt.is_file():
        try:
            return checked_points(torch.from_numpy(np.load(kept, allow_pickle=False)), record, n)
        except (OSError, ValueError) as e:
            raise ConfigError(f"figures: {kept} is not a readable .npy array ({e}); delete it "
                              "and redraw from the run's checkpoint") from None
    model = load_model(ckpt, "cpu", member=record.member)
    torch.manual_seed(seed)
    x = checked_points(model.sample(n), record, n)
    kept.parent.mkdir(exist_ok=True)
    np.save(kept, x.numpy())
    return x


def checked_points(x: torch.Tensor, record: RunRecord, n: int) -> torch.Tensor:
    """`x` as float32 when it holds n 2D points, else a clear error."""
    if x.shape != (n, 2) or not x.dtype.is_floating_point:
        raise ConfigError(f"figures: run {record.name} is not a 2D toy model (samples of shape "
                          f"{tuple(x.shape)}); a scatter plot needs {n} 2D points")
    return x.float()


def toy_data(config: dict):
    """The run's toy DataModule (mode centres and std), rebuilt from its data config."""
    return build_datamodule(OmegaConf.create(config["data"]), seed=int(config.get("seed", 0)))


def draw_scatter(rows: dict[str, list[RunRecord]], n: int, seed: int,
                 path_of: dict[str, Path]) -> list[str]:
    """One figure per toy dataset (path_of: dataset -> file), a panel per row; returns the
    labels of rows with neither a checkpoint nor kept points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    by_data: dict[str, list[tuple[str, RunRecord]]] = {}
    missing = []
    for label, runs in rows.items():
        run = seed_run(runs, seed, n)
        if run is None:
            missing.append(label)
            continue
        by_data.setdefault(str(run.config["data"]["name"]), []).append((label, run))
    for dataset, panels in sorted(by_data.items()):
        dm = toy_data(panels[0][1].config)
        centres, std = dm.modes().numpy(), dm.mode_std
        lim = float(np.abs(centres).max()) * 1.35 + 6 * std
        cols = min(4, len(panels))
        nrows = math.ceil(len(panels) / cols)
        fig, axes = plt.subplots(nrows, cols, figsize=(3 * cols, 3 * nrows), dpi=100,
                                 squeeze=False)
        for ax in axes.flat[len(panels):]:
            ax.axis("off")
        for ax, (label, run) in zip(axes.flat, panels):
            x = toy_points(run, n, seed).numpy()
            ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.4, color="tab:blue", linewidths=0)
            for c in centres:
                ax.add_patch(Circle(c, 3 * std, fill=False, color="tab:red", lw=0.6))
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{label} (seed {run.config.get('seed')})", fontsize=8)
        sep = "; " if cols > 1 else "\n"  # one 3-inch panel fits the title on two lines
        fig.suptitle(f"{dataset}: {n} samples per panel{sep}red circles: 3 std of each mode",
                     fontsize=9)
        fig.tight_layout()
        path = path_of[dataset]
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, metadata=png_metadata())
        plt.close(fig)
        print(f"wrote {path} ({len(panels)} panels)")
    return missing


def is_toy(records: list[RunRecord]) -> bool:
    """Every finished run trains on 2D toy data (its DataModule is a ToyDataModule)."""
    names = {str((r.config.get("data") or {}).get("name")) for r in records}
    return bool(names) and all(n in DATASETS.names() and issubclass(DATASETS.get(n),
                                                                    ToyDataModule)
                               for n in names)


def scatter_figures(rows: dict[str, list[RunRecord]], out: Path, n: int = SCATTER_POINTS,
                    seed: int = SCATTER_SEED) -> tuple[list[Path], list[str]]:
    """OUT_scatter_<dataset>.png for each toy dataset of the rows; returns the files and a
    line naming the rows left out (they have neither a checkpoint nor kept points)."""
    datasets = sorted({str(r.config["data"]["name"]) for runs in rows.values() for r in runs})
    path_of = {d: out.with_name(f"{out.name}_scatter_{d}.png") for d in datasets}
    missing = draw_scatter(rows, n, seed, path_of)
    drawn = {str(runs[0].config["data"]["name"]) for label, runs in rows.items()
             if label not in missing}
    why = (f"no {CHECKPOINTS_DIR}/{LAST_CHECKPOINT} and no kept {SCATTER_DIR}/ points of seed "
           f"{seed} ({n} points)")
    return [path_of[d] for d in datasets if d in drawn], \
        [f"no panel for {', '.join(missing)}: {why}"] if missing else []


def draw_toy_scatter(records: list[RunRecord], group_by: list[str],
                     out: Path) -> tuple[list[Path], list[str]]:
    """The table's scatter figures (`lit_gen.bench --scatter`): its rows' finished runs."""
    rows = group_rows(records, group_by)
    finished = [r for runs in rows.values() for r in runs]
    if not is_toy(finished):
        raise ConfigError("--scatter: the finished runs are not all on 2D toy data")
    return scatter_figures(rows, out)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m lit_gen.bench figures", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sources", nargs="+", metavar="RUNS_DIR_OR_SWEEP")
    parser.add_argument("--out", required=True, help="prefix: writes PREFIX_gallery.png and "
                                                     "PREFIX_curves.png")
    parser.add_argument("--group-by", default="model,dataset", help="row keys, as in the table")
    parser.add_argument("--metric", default="fid", help="the curve's metric (fid)")
    parser.add_argument("--n", type=int, default=10, help="samples per gallery row (10)")
    parser.add_argument("--seed", type=int, default=SCATTER_SEED,
                        help="sampling seed of every row (0)")
    parser.add_argument("--points", type=int, default=SCATTER_POINTS,
                        help="samples per toy scatter panel (2500, the short protocol's)")
    parser.add_argument("--only", choices=("gallery", "curves", "scatter"), default=None,
                        help="draw one of the pictures (default: gallery and curves, or the "
                             "scatter plots for toy runs)")
    return parser.parse_args(argv)


@cli_main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    if args.n <= 0:
        raise ConfigError("--n must be positive")
    records = [r for s in args.sources for r in load_records(s)]
    rows = group_rows(records, [k.strip() for k in args.group_by.split(",") if k.strip()])
    if not rows:
        raise ConfigError("figures: no finished local runs in " + ", ".join(args.sources))
    if args.points <= 0:
        raise ConfigError("--points must be positive")
    out = Path(args.out)
    finished = [r for runs in rows.values() for r in runs]
    if args.only == "scatter" or (args.only is None and is_toy(finished)):
        if not is_toy(finished):
            raise ConfigError("figures --only scatter: the runs are not all on 2D toy data")
        for label in scatter_figures(rows, out, args.points, args.seed)[1]:
            print(f"scatter: {label}")
        return 0
    jobs = {"gallery": lambda p: draw_gallery(rows, args.n, args.seed, p),
            "curves": lambda p: plot_curves(rows, args.metric, p)}
    for name, job in jobs.items():
        if args.only not in (None, name):
            continue
        path = out.with_name(f"{out.name}_{name}.png")
        missing = job(path)
        if len(missing) < len(rows):
            print(f"wrote {path} ({len(rows) - len(missing)} rows)")
        for label in missing:
            why = "no checkpoints/last.ckpt" if name == "gallery" else \
                f"no {args.metric} evaluated during training in metrics.csv"
            print(f"{name}: left out {label} ({why})")
    return 0
