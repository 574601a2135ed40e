"""The command line of `python -m lit_gen.bench speed` and the order of its sections."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

from lit_gen.bench.speed import DESCRIPTION
from lit_gen.bench.speed.fid import bench_fid
from lit_gen.bench.speed.lit import ROOT
from lit_gen.bench.speed.measure import environment, pick_device
from lit_gen.bench.speed.process import bench_experiment, bench_thread_policy
from lit_gen.bench.speed.report import format_report, summarize
from lit_gen.bench.speed.settings import EXPERIMENTS, MODEL_CONFIGS, QUICK, Settings, train_cases
from lit_gen.bench.speed.train import bench_case, bench_fast_paths, data_path_rows
from lit_gen.errors import ConfigError, cli_main
from lit_gen.run.threads import cuda_queried_per_step, skip_cuda_query_without_gpu


def _csv(kind):
    return lambda text: [kind(t) for t in text.split(",") if t.strip()]


def parse_args(argv: list[str] | None) -> tuple[Settings, argparse.Namespace]:
    p = argparse.ArgumentParser(prog="python -m lit_gen.bench speed", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes for a CI smoke test (< 2 min on 2 CPU cores)")
    p.add_argument("--out", default=None, help="write the results as JSON to this file")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--skip-train", action="store_true", default=None)
    p.add_argument("--skip-fid", action="store_true", default=None)
    p.add_argument("--models", type=_csv(str), help="dcgan,wgan_gp,vae")
    p.add_argument("--sizes", type=_csv(int), help="28,32")
    p.add_argument("--data", type=_csv(str), help="synthetic,digits[,mnist]")
    p.add_argument("--batches", type=_csv(str), help="dataloader,on_device")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--warmup", type=int)
    p.add_argument("--steps", type=int)
    p.add_argument("--repeats", type=int)
    p.add_argument("--precision", help="32-true | bf16-mixed | 16-mixed (both sides)")
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile (both sides)")
    p.add_argument("--channels-last", action="store_true", default=None, help="both sides")
    p.add_argument("--fid-n", type=int, help="generated images per FID (default 10000)")
    p.add_argument("--fid-real", type=int, help="real images (default 50000, a full train split)")
    p.add_argument("--fid-batch-size", type=int)
    p.add_argument("--fid-repeats", type=int)
    p.add_argument("--extractors", type=_csv(str), help="inception,classifier")
    p.add_argument("--fast-paths", action="store_true", default=None,
                   help="also time lit_gen with each fast-path switch on")
    p.add_argument("--mnist-root", help="a data.root holding MNIST/raw/ (adds real MNIST cases)")
    p.add_argument("--seed", type=int)
    p.add_argument("--clock", choices=("wall", "process"),
                   help="throughput by wall clock (default) or by CPU time: this process's "
                        "(in-process sections), each measured process's (whole process)")
    p.add_argument("--net-overrides", type=_csv(str),
                   help="config overrides for the GAN nets of both sides, comma-separated")
    p.add_argument("--no-lightning-floor", dest="lightning_floor", action="store_false",
                   default=None, help="skip the bare-LightningModule reference runs")
    p.add_argument("--experiments", type=_csv(str),
                   help=f"whole-process cases (conf/experiment names), e.g. {','.join(EXPERIMENTS)}")
    p.add_argument("--epochs", type=int, help="whole process: N (the long runs train 3N)")
    p.add_argument("--process-threads", type=int, help="whole process: torch threads of both sides")
    p.add_argument("--process-repeats", type=int)
    p.add_argument("--steps-per-batch", type=_csv(int),
                   help="whole process: also bare Lightning with K plain steps per batch, "
                        "and lit_gen.fit with data.group_batches=K")
    p.add_argument("--thread-policy", action="store_true", default=None,
                   help="whole runs of the first experiment quiet, beside a busy process, "
                        "and two side by side (the run's own thread policy)")
    p.add_argument("--fit-root", default=None,
                   help="the checkout whose `lit_gen.fit` the whole-process sections run "
                        "(default: this one)")
    p.add_argument("--before-root", default=None,
                   help="whole process: also time this checkout's `lit_gen.fit`, interleaved "
                        "(before/after figures in one run)")
    args = p.parse_args(argv)
    s = replace(QUICK) if args.quick else Settings()
    for f in ("models", "sizes", "data", "batches", "batch_size", "warmup", "steps", "repeats",
              "precision", "compile", "channels_last", "fid_n", "fid_real", "fid_batch_size",
              "fid_repeats", "extractors", "fast_paths", "mnist_root", "seed", "skip_train",
              "skip_fid", "clock", "net_overrides", "lightning_floor", "experiments", "epochs",
              "process_threads", "process_repeats", "steps_per_batch", "thread_policy",
              "before_root"):
        value = getattr(args, f)
        if value is not None:
            setattr(s, f, value)
    if s.mnist_root and "mnist" not in s.data:
        s.data = [*s.data, "mnist"]
    bad = [m for m in s.models if m not in MODEL_CONFIGS]
    if bad:
        raise ConfigError(f"--models: unknown '{bad[0]}'; valid: {', '.join(MODEL_CONFIGS)}")
    bad = [b for b in s.batches if b not in ("dataloader", "on_device")]
    if bad:
        raise ConfigError(f"--batches: unknown '{bad[0]}'; valid: dataloader, on_device")
    bad = [d for d in s.data if d not in ("synthetic", "digits", "mnist")]
    if bad:
        raise ConfigError(f"--data: unknown '{bad[0]}'; valid: synthetic, digits, mnist")
    bad = [e for e in s.experiments if not (ROOT / "conf" / "experiment" / f"{e}.yaml").is_file()]
    if bad:
        raise ConfigError(f"--experiments: no conf/experiment/{bad[0]}.yaml; e.g. "
                          f"{', '.join(EXPERIMENTS)}")
    if s.thread_policy and not s.experiments:
        raise ConfigError("--thread-policy times the first of --experiments: name one")
    for name in ("batch_size", "warmup", "steps", "repeats", "fid_n", "fid_real",
                 "fid_batch_size", "fid_repeats", "epochs", "process_threads",
                 "process_repeats"):
        if getattr(s, name) is not None and getattr(s, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1")
    return s, args


def run(s: Settings, device: torch.device, log: Callable = print,
        fit_root: Path = ROOT) -> dict:
    t_start = time.perf_counter()
    result: dict[str, Any] = {"version": 2, "environment": environment(device),
                              "settings": asdict(s), "train": [], "data_paths": [],
                              "fast_paths": [], "fid": [], "process": [], "thread_policy": []}
    # the benchmark process pays no per-step CUDA query on a CPU-only machine, as fit does
    skip_cuda_query_without_gpu()
    result["environment"]["cuda_query_per_step"] = cuda_queried_per_step()
    if s.models and not s.skip_train:
        log("training throughput:")
        for case in train_cases(s):
            result["train"].append(bench_case(case, s, device, log))
        result["data_paths"] = data_path_rows(result["train"], device)
    if s.fast_paths:
        log("fast paths:")
        result["fast_paths"] = bench_fast_paths(s, device, log)
    if s.extractors and not s.skip_fid:
        log("FID:")
        result["fid"] = bench_fid(s, device, log)
    if s.experiments:
        log("whole process:")
        result["process"] = [bench_experiment(e, s, device, fit_root, log) for e in s.experiments]
    if s.thread_policy:
        log("thread policy:")
        result["thread_policy"] = bench_thread_policy(s.experiments[0], s, fit_root, log)
    result["targets"] = summarize(result)
    result["wall_s"] = round(time.perf_counter() - t_start, 1)
    return result


@cli_main
def main(argv: list[str] | None = None) -> int:
    s, args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    os.environ.setdefault("WANDB_MODE", "offline")
    fit_root = Path(args.fit_root).resolve() if args.fit_root else ROOT
    result = run(s, device, log=lambda msg: print(msg, file=sys.stderr, flush=True),
                 fit_root=fit_root)
    print(format_report(result))
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")
    return 0
