"""In-process training throughput: lit_gen, bare Lightning and the plain loop on the same
nets and batches, timed inside the epoch (start-up, checkpoints and grids excluded)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, replace
from typing import Any

import torch

from lit_gen.bench.speed.lit import case_config, load_data, run_bare, run_lit
from lit_gen.bench.speed.measure import median, peak_memory, status
from lit_gen.bench.speed.plain import run_plain
from lit_gen.bench.speed.settings import RATIO_TARGET, Settings, TrainCase


def bench_case(case: TrainCase, s: Settings, device: torch.device, log: Callable) -> dict:
    cfg = case_config(case, s, device)
    dm = load_data(cfg)
    row: dict[str, Any] = {"case": case.name, **asdict(case), "channels": case.channels,
                           "batch_size": s.batch_size, "warmup": s.warmup}
    steps = min(s.steps, len(dm.x_train) // s.batch_size - s.warmup)
    if steps < 1:
        row.update(status="SKIP", reason=f"{len(dm.x_train)} training images give fewer than "
                   f"{s.warmup + 1} batches of {s.batch_size}")
        return row
    s = replace(s, steps=steps)
    row["steps"] = steps
    sides = ["plain", "lightning", "lit_gen"] if s.lightning_floor else ["plain", "lit_gen"]
    runs: dict[str, list[dict[str, float]]] = {side: [] for side in sides}
    mem: dict[str, dict] = {side: {} for side in sides}
    run_side = {"plain": lambda: run_plain(cfg, s, case, device, dm),
                "lightning": lambda: run_bare(cfg, s, case, device, dm),
                "lit_gen": lambda: run_lit(cfg, s, device, dm)}
    for r in range(s.repeats):
        # a different order each repeat, so no side always runs first (or after another)
        order = sides[r % len(sides):] + sides[:r % len(sides)]
        for side in (order if r % 2 == 0 else order[::-1]):
            m: dict = {}
            with peak_memory(device, m):
                secs = run_side[side]()
            runs[side].append({k: steps * s.batch_size / v for k, v in secs.items()})
            mem[side] = {k: max(v, mem[side].get(k, 0)) if isinstance(v, float) else v
                         for k, v in m.items()}
    for side, per_run in runs.items():
        if per_run:
            by_clock = {c: [r[c] for r in per_run] for c in ("wall", "process")}
            row[side] = {"images_per_s": round(median(by_clock[s.clock]), 2),
                         "wall_images_per_s": round(median(by_clock["wall"]), 2),
                         "process_images_per_s": round(median(by_clock["process"]), 2),
                         "runs": [round(v, 2) for v in by_clock[s.clock]], **mem[side]}
    lit, plain = row["lit_gen"]["images_per_s"], row["plain"]["images_per_s"]
    row["ratio"] = round(lit / plain, 4)
    # per-batch time lit_gen spends beyond the plain loop (framework overhead estimate)
    row["overhead_ms_per_batch"] = round((s.batch_size / lit - s.batch_size / plain) * 1e3, 3)
    if "lightning" in row:
        bare = row["lightning"]["images_per_s"]
        # lit_gen vs the same step in a bare LightningModule: what lit_gen itself adds
        row["ratio_vs_lightning"] = round(lit / bare, 4)
        # the bare LightningModule vs the plain loop: Lightning's own per-batch cost
        row["lightning_ratio"] = round(bare / plain, 4)
    row["target"] = f"ratio >= {RATIO_TARGET}"
    row["status"] = status(row["ratio"] >= RATIO_TARGET)
    log(f"  {case.name:<38} lit_gen {row['lit_gen']['images_per_s']:>9.1f}  "
        + (f"lightning {row['lightning']['images_per_s']:>9.1f}  " if "lightning" in row else "")
        + f"plain {row['plain']['images_per_s']:>9.1f} img/s  {row['status']}")
    return row


def data_path_rows(train: list[dict], device: torch.device) -> list[dict]:
    """on_device vs DataLoader throughput of lit_gen for every case measured both ways."""
    by_key: dict[tuple, dict] = {}
    for row in train:
        if "lit_gen" in row:
            by_key.setdefault((row["model"], row["size"], row["data"]), {})[row["batches"]] = row
    out = []
    for (model, size, data), pair in by_key.items():
        if {"dataloader", "on_device"} <= set(pair):
            dl = pair["dataloader"]["lit_gen"]["images_per_s"]
            od = pair["on_device"]["lit_gen"]["images_per_s"]
            gpu = device.type == "cuda"
            out.append({"case": f"{model}-{size}px-{data}", "dataloader_images_per_s": dl,
                        "on_device_images_per_s": od, "speedup": round(od / dl, 4),
                        "target": "on_device > dataloader (GPU)" if gpu else "none on CPU",
                        "status": status(od > dl) if gpu else "INFO"})
    return out


FAST_PATHS = {
    "baseline": [],
    "channels_last": ["model.channels_last=true"],
    "adam_foreach": ["model.g_optim.foreach=true", "model.d_optim.foreach=true"],
    "adam_fused": ["model.g_optim.fused=true", "model.d_optim.fused=true"],
    "bf16-mixed": ["trainer.precision=bf16-mixed"],
    "16-mixed": ["trainer.precision=16-mixed"],
    "compile": ["model.compile=true"],
}


def bench_fast_paths(s: Settings, device: torch.device, log: Callable) -> list[dict]:
    """lit_gen throughput of DCGAN and WGAN-GP at 32 px with each switch on, vs none."""
    rows = []
    for model in ("dcgan", "wgan_gp"):
        case = TrainCase(model, 32, "synthetic", "on_device")
        base = None
        for name, extra in FAST_PATHS.items():
            if name == "16-mixed" and device.type != "cuda":
                rows.append({"case": f"{model}-32px", "switch": name, "status": "SKIP",
                             "reason": "Lightning runs 16-mixed as bf16-mixed on CPU (see the "
                                       "bf16-mixed row)"})
                continue
            cfg = case_config(case, s, device, extra)
            if name == "compile":
                # compile happens in the first D step and the first G step (batch n_critic):
                # keep both, and the recompiles they trigger, out of the timed window
                s_run = replace(s, warmup=max(s.warmup, 2 * cfg.model.n_critic + 1))
                cfg = case_config(case, s_run, device, extra)  # enough data for the warm-up
            else:
                s_run = s
            dm = load_data(cfg)
            ips = [s.steps * s.batch_size / run_lit(cfg, s_run, device, dm)[s.clock]
                   for _ in range(s.repeats)]
            value = median(ips)
            base = value if name == "baseline" else base
            rows.append({"case": f"{model}-32px", "switch": name, "overrides": extra,
                         "images_per_s": round(value, 2),
                         "speedup": round(value / base, 4) if base else None, "status": "INFO"})
            log(f"  {model}-32px {name:<14} {value:>9.1f} img/s")
    return rows
