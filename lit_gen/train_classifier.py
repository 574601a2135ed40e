"""`python -m lit_gen.train_classifier --data NAME [--out PATH] [--epochs N] [data.key=value ...]`

Trains the domain classifier (`lit_gen.nets.classifier.DomainClassifier`) on a labelled
dataset, reports its test accuracy and saves it as a file that
`metrics.feature_extractor=classifier metrics.classifier_ckpt=PATH` uses as a torch-fidelity
feature extractor (FID/KID/PRC on the penultimate layer, IS on the logits), fully offline.

Train it on the data the generator sees: the same `data.image_size` (e.g. 16 for the
quickstart's digits); other sizes are resized to the classifier's input at evaluation.

Threads follow `lit_gen.fit`'s policy (`lit_gen.run.threads`; one thread for this small
net on any machine, unless OMP_NUM_THREADS says otherwise): the number of threads changes
the order of floating-point sums, so a classifier trained with torch's default (one thread
per core) differs from machine to machine, and with it every FID computed through it.
"""

from __future__ import annotations

import os

# before torch loads its OpenMP runtime, which reads this once (see lit_gen.run.threads)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import json
import sys
import time
from pathlib import Path

from lit_gen import config, validation
from lit_gen.config import to_container
from lit_gen.data import build_datamodule
from lit_gen.data.base import random_hflip
from lit_gen.errors import ConfigError, DataError, cli_main
from lit_gen.nets.classifier import DomainClassifier, save_classifier
from lit_gen.run.threads import apply_thread_policy


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m lit_gen.train_classifier", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="dataset name (digits, mnist, fashion_mnist, ...)")
    parser.add_argument("--config", action="append", default=[],
                        help="yaml whose `data:` section to start from (e.g. conf/data/digits.yaml)")
    parser.add_argument("--out", default=None,
                        help="classifier file (default runs/classifiers/<data>-<size>px.pt)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--base-channels", type=int, default=32)
    parser.add_argument("--feature-dim", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    return parser.parse_known_args(argv)


def evaluate_accuracy(net, x, y, device, batch_size: int = 512) -> float:
    import torch

    net.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            logits = net(x[start:start + batch_size].to(device))
            correct += int((logits.argmax(1).cpu() == y[start:start + batch_size]).sum())
    return correct / max(len(x), 1)


def shift_augment(x, max_shift: int, gen):
    """Random translations by up to `max_shift` pixels (zero = background -1 padding)."""
    import torch

    if max_shift == 0:
        return x
    pad = torch.nn.functional.pad(x, [max_shift] * 4, value=-1.0)
    h, w = x.shape[-2:]
    dx, dy = torch.randint(0, 2 * max_shift + 1, (2,), generator=gen).tolist()
    return pad[..., dy:dy + h, dx:dx + w]


def train(cfg, args) -> dict:
    """Train on the data's train split, pick the epoch with the best validation accuracy,
    report test accuracy (val accuracy when the data has no test split)."""
    import torch

    torch.manual_seed(args.seed)
    dm = build_datamodule(cfg.data, seed=cfg.seed)
    dm.setup()
    info = dm.info()
    if info.kind != "image" or info.num_classes < 2:
        raise DataError(f"data '{cfg.data.name}' has no labelled images; the classifier needs "
                        "labelled image data (digits, mnist, fashion_mnist, cifar10, image_folder "
                        "with class subfolders)")
    x_tr, y_tr = dm.split("train")
    x_val, y_val = dm.split("val")
    try:
        x_te, y_te = dm.split("test")
    except DataError:
        x_te, y_te = None, None
    device = torch.device(args.device)
    kwargs = {"base_channels": args.base_channels, "feature_dim": args.feature_dim}
    net = DomainClassifier(info.shape, info.num_classes, **kwargs).to(device)
    threads = apply_thread_policy(cfg, net)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs)
    gen = torch.Generator().manual_seed(args.seed)
    max_shift = max(1, info.shape[-1] // 8)
    best = (-1.0, None)
    for epoch in range(args.epochs):
        net.train()
        perm = torch.randperm(len(x_tr), generator=gen)
        for start in range(0, len(x_tr), args.batch_size):
            idx = perm[start:start + args.batch_size]
            xb = shift_augment(x_tr[idx], max_shift, gen)
            if cfg.data.hflip:  # e.g. clothing (fashion_mnist); not digits
                xb = random_hflip(xb, gen)
            xb = xb.to(device)
            loss = torch.nn.functional.cross_entropy(net(xb), y_tr[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sched.step()
        val_acc = evaluate_accuracy(net, x_val, y_val, device) if len(x_val) else \
            evaluate_accuracy(net, x_tr, y_tr, device)
        print(f"epoch {epoch + 1}/{args.epochs}: loss {loss.item():.4f}  val acc {val_acc:.4f}",
              file=sys.stderr)
        if val_acc > best[0]:
            best = (val_acc, {k: v.detach().clone() for k, v in net.state_dict().items()})
    net.load_state_dict(best[1])
    test_acc = evaluate_accuracy(net, x_te, y_te, device) if x_te is not None else None
    return {"net": net.cpu(), "kwargs": kwargs, "val_accuracy": best[0], "test_accuracy": test_acc,
            "shape": info.shape, "n_train": len(x_tr), "n_val": len(x_val), "threads": threads,
            "n_test": 0 if x_te is None else len(x_te),
            # what the data is, in its own words (e.g. mnist10k: "the 10,000 MNIST test images
            # alone ... split into 8,000 training and 2,000 test images")
            "data_description": " ".join((type(dm).__doc__ or "").split())}


@cli_main
def main(argv: list[str] | None = None) -> int:
    args, overrides = parse_args(argv)
    if args.epochs <= 0 or args.batch_size <= 0:
        raise ConfigError("--epochs and --batch-size must be positive")
    bad = [o for o in config.normalize_overrides(overrides) if not o.startswith("data.")]
    if bad:
        raise ConfigError(f"only data.* overrides apply here, got '{bad[0]}'")
    cfg = validation.load(args.config, [f"data.name={args.data}", *overrides, f"seed={args.seed}"])
    start = time.time()
    result = train(cfg, args)
    size = result["shape"][-1]
    out = Path(args.out or f"runs/classifiers/{cfg.data.name}-{size}px.pt")
    data_cfg = to_container(cfg.data)
    save_classifier(out, result["net"], "cnn", result["kwargs"], data=data_cfg, seed=cfg.seed,
                    val_accuracy=result["val_accuracy"], test_accuracy=result["test_accuracy"],
                    epochs=args.epochs, data_description=result["data_description"],
                    splits={k: result[f"n_{k}"] for k in ("train", "val", "test")},
                    threads=result["threads"])
    report = {"classifier": str(out), "data": cfg.data.name, "image_size": size,
              "n_train": result["n_train"], "n_val": result["n_val"], "n_test": result["n_test"],
              "val_accuracy": result["val_accuracy"], "test_accuracy": result["test_accuracy"],
              "threads": result["threads"]["intra_op_threads"],
              "seconds": round(time.time() - start, 1)}
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
