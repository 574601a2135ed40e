"""The reference processes of the whole-process benchmark (`process.py` starts them):

- `plain`: an independent plain-PyTorch training script on the same nets, losses and data
  as the experiment: no Lightning import, torch's own optimizers, batches cut from the
  training tensor with one permutation per epoch, the loss read on the host every
  `log_every_n_steps` steps and written to a CSV file, the nets saved at the end. It is the
  counterpart of a whole `python -m lit_gen.fit` run (`lit_gen.fit.run`).
- `bare`: the same step in a bare LightningModule under `lightning.Trainer` (no callbacks,
  logger or checkpointing), optionally K plain steps per Lightning batch: the counterpart
  of `lit_gen.fit` without lit_gen's model, callbacks and run directory.

Run as `python -c "from lit_gen.bench.speed.script import train; train('SPEC.json')"`; the
spec names the mode, the resolved run config, the training tensors and the epochs.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

#: torch's optimizers by `model.*_optim.name` (the plain script does not use lit_gen's)
TORCH_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
                    "rmsprop": torch.optim.RMSprop, "sgd": torch.optim.SGD}


def torch_optimizer(params, cfg: dict, key: str) -> torch.optim.Optimizer:
    """The optimizer a plain script builds from the config's `name`, `lr`, `betas`, ..."""
    cls = TORCH_OPTIMIZERS[cfg["name"]]
    kwargs = {"lr": cfg["lr"], "weight_decay": cfg["weight_decay"]}
    if cls in (torch.optim.Adam, torch.optim.AdamW):
        kwargs["betas"] = tuple(cfg["betas"])
    else:
        kwargs["momentum"] = cfg["momentum"]
    return cls(params, **kwargs)


def epoch_batches(x: torch.Tensor, batch_size: int, epoch: int, seed: int,
                  steps_per_batch: int = 1):
    """One epoch of shuffled batches of x (drop_last, as lit_gen's loader); with K steps per
    batch, K minibatches stacked as (K, B, ...)."""
    n = len(x)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100003 + epoch))
    per = batch_size * steps_per_batch
    for i in range(n // batch_size // steps_per_batch):
        idx = perm[i * per:(i + 1) * per]
        xb = x[idx]
        yield (xb.view(steps_per_batch, batch_size, *x.shape[1:]) if steps_per_batch > 1
               else xb), None


def train(spec_file: str) -> None:
    from omegaconf import OmegaConf

    from lit_gen.bench.speed.plain import plain_setup
    from lit_gen.bench.speed.settings import Settings

    spec = json.loads(Path(spec_file).read_text())
    if spec["mode"] not in MODES:
        raise ValueError(f"unknown mode '{spec['mode']}'; valid: {', '.join(MODES)}")
    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    cfg = OmegaConf.load(spec["config"])
    x = torch.load(spec["data"])
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    setup = plain_setup(cfg, Settings(), torch.device("cpu"), tuple(x.shape[1:]),
                        torch_optimizer)
    MODES[spec["mode"]](cfg, setup, x, spec, out)
    torch.save([net.state_dict() for net in setup.nets], out / "final.pt")


def run_plain_script(cfg, setup, x, spec: dict, out: Path) -> None:
    def update(loss, opt):
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    log_every, step = cfg.trainer.log_every_n_steps, 0
    with open(out / "losses.csv", "w") as log:
        for epoch in range(spec["epochs"]):
            for xb, _ in epoch_batches(x, cfg.data.batch_size, epoch, cfg.seed):
                loss = setup.step(step, xb, update)
                step += 1
                if step % log_every == 0:
                    log.write(f"{step},{loss.item()}\n")


class _EpochBatches:
    def __init__(self, x: torch.Tensor, batch_size: int, seed: int, steps_per_batch: int):
        self.x, self.batch_size, self.seed, self.k = x, batch_size, seed, steps_per_batch
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.x) // self.batch_size // self.k

    def __iter__(self):
        self.epoch += 1
        return epoch_batches(self.x, self.batch_size, self.epoch - 1, self.seed, self.k)


def run_bare_script(cfg, setup, x, spec: dict, out: Path) -> None:
    import lightning as L

    from lit_gen.bench.speed.lit import bare_module
    from lit_gen.run.threads import skip_cuda_query_without_gpu

    skip_cuda_query_without_gpu()  # as lit_gen.fit does: the floor without that cost
    k = int(spec.get("steps_per_batch", 1))
    module = bare_module(setup, cfg.trainer.log_every_n_steps)
    trainer = L.Trainer(default_root_dir=str(out), logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False,
                        accelerator="cpu", devices=1, max_epochs=spec["epochs"],
                        limit_val_batches=0, num_sanity_val_steps=0,
                        log_every_n_steps=cfg.trainer.log_every_n_steps)
    trainer.fit(module, train_dataloaders=_EpochBatches(x, cfg.data.batch_size, cfg.seed, k))


MODES = {"plain": run_plain_script, "bare": run_bare_script}
