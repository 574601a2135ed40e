"""The base LightningModule of the zoo: data info, fixed noise, `sample()`, grids, optimizers, EMA."""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import lightning as L
import torch
from lightning.pytorch.plugins.precision import Precision
from lightning.pytorch.profilers import PassThroughProfiler
from lightning.pytorch.strategies import SingleDeviceStrategy
from torch import nn

from lit_gen import __version__
from lit_gen.data.base import BatchGroup
from lit_gen.errors import CheckpointError, ConfigError, NonFiniteError
from lit_gen.losses.penalties import Draws
from lit_gen.models.optim import (
    apply_fast_paths,
    build_optimizer,
    build_scheduler,
    default_optim,
)
from lit_gen.nets.layers import eval_mode
from lit_gen.nets.members import member, stack_members
from lit_gen.registry import Registry, check_kwargs

Tensor = torch.Tensor


class Batch(NamedTuple):
    """A real batch: x (B, ...) in [-1, 1], y (B,) labels (zeros when the data has none)."""

    x: Tensor
    y: Tensor


class Grid(NamedTuple):
    """Images (N, C, H, W) laid out `nrow` per row, or points (N, 2) for toy data."""

    x: Tensor
    nrow: int = 8


class LossOutput(NamedTuple):
    """A scalar loss to optimise and the named terms to log (tensors, no host sync)."""

    loss: Tensor
    logs: dict[str, Tensor]


class Phase(NamedTuple):
    """One optimizer step of a training batch in `GenerativeModule.alternate`.

    player: "d" (every batch) or "g" (every `n_critic`-th batch); optimizer: the one it
    steps; loss: a callable returning the LossOutput to minimise (called with that
    optimizer toggled); name: the loss's name in messages (e.g. "d_loss"); after: called
    with the LossOutput after the step (D penalties' state, BEGAN's k_t)."""

    player: str
    optimizer: Any
    loss: Callable[[], LossOutput]
    name: str
    after: Callable[[LossOutput], None] | None = None


def host_scalars(values: dict[str, Tensor | float]) -> dict[str, Tensor]:
    """Scalars as 0-dim CPU float tensors, with one device-to-host copy for all of them."""
    names = [k for k, v in values.items() if isinstance(v, Tensor)]
    out = {k: torch.tensor(float(v)) for k, v in values.items() if not isinstance(v, Tensor)}
    if names:
        stacked = torch.stack([values[k].detach().float().reshape(()) for k in names]).cpu()
        out.update(zip(names, stacked.unbind()))
    return {k: out[k] for k in values}


class EpochSums:
    """Running sums of logged training terms, kept on their device (adding never syncs).

    Tensor terms are added with one fused in-place op per step (`torch._foreach_add_`)
    rather than one op per term: on a small model the per-op dispatch cost shows."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, Tensor | float] = {}
        self.counts: dict[str, int] = {}
        self.prog_bar: set[str] = set()

    def add(self, logs: dict[str, Tensor | float], prog_bar=()) -> None:
        sums, counts = self.sums, self.counts
        targets, values = [], []
        for k, v in logs.items():
            if isinstance(v, Tensor):
                if k not in sums:  # a float32 scalar on the term's device
                    sums[k] = torch.zeros((), dtype=torch.float32, device=v.device)
                targets.append(sums[k])
                values.append(v if v.ndim == 0 else v.reshape(()))
            else:
                sums[k] = sums.get(k, 0.0) + float(v)
            counts[k] = counts.get(k, 0) + 1
        if targets:
            with torch.no_grad():  # in place into the sums: no graph, no host sync
                torch._foreach_add_(targets, values)
        if prog_bar:
            self.prog_bar.update(k for k in logs if k in prog_bar)

    def all_finite(self) -> Tensor | None:
        """A device bool: every tensor sum is finite (no host sync); None without sums."""
        tensors = [v for v in self.sums.values() if isinstance(v, Tensor)]
        return torch.isfinite(torch.stack(tensors)).all() if tensors else None

    def means(self) -> dict[str, tuple[Tensor, bool]]:
        """name -> (mean over the added values as a CPU tensor, shown in the progress bar)."""
        means = host_scalars(self.sums)
        return {k: (v / self.counts[k], k in self.prog_bar) for k, v in means.items()}


#: the Lightning hooks around manual_backward / LightningOptimizer.step; a callback or model
#: overriding one of them keeps Lightning's own calls (see `direct_steps_allowed`)
CALLBACK_STEP_HOOKS = ("on_before_backward", "on_after_backward", "on_before_optimizer_step")
MODULE_STEP_HOOKS = ("on_before_backward", "on_after_backward", "backward")


def direct_steps_allowed(module: L.LightningModule) -> bool:
    """Whether `step_optimizer` may call backward and the optimizer directly: one process,
    full fp32 precision (no AMP scaling or casting around backward), no profiler, and no
    callback or model hook that Lightning would call around the step (the model's own
    `on_before_optimizer_step`, gradient clipping, is called directly)."""
    trainer = module._trainer
    if trainer is None or type(trainer.strategy) is not SingleDeviceStrategy:
        return False
    if type(trainer.precision_plugin) is not Precision:
        return False
    if not isinstance(trainer.profiler, PassThroughProfiler):
        return False
    for cb in trainer.callbacks:
        if any(getattr(type(cb), h) is not getattr(L.Callback, h) for h in CALLBACK_STEP_HOOKS):
            return False
    return all(getattr(type(module), h) is getattr(L.LightningModule, h)
               for h in MODULE_STEP_HOOKS)


#: what a non-finite loss, gradient or parameter does (`run.on_nonfinite`)
NONFINITE_POLICIES = ("stop", "skip_step")
def check_nonfinite_policy(value: str) -> None:
    """A ConfigError unless `value` is one of NONFINITE_POLICIES (`run.on_nonfinite`)."""
    if value not in NONFINITE_POLICIES:
        raise ConfigError(f"run.on_nonfinite: unknown policy '{value}'. Valid policies: "
                          f"{', '.join(NONFINITE_POLICIES)}")


#: the key under which the epoch sums' finiteness rides along with a logging step's values
_SUMS_FINITE = "_sums_finite"


def finite_flags(tensors: Sequence[Tensor]) -> Tensor:
    """(N,) device bools: tensor i has only finite values (no host sync)."""
    return torch.stack([torch.isfinite(t).all() for t in tensors])


def tiny_config_over(base: dict[str, Any], data: dict[str, Any] | None = None,
                     **model: Any) -> dict[str, Any]:
    """A `tiny_config` that changes another one's model keys (and data section)."""
    return {"data": {**base.get("data", {}), **(data or {})},
            "model": {**base.get("model", {}), **model}}


def cpu_loss_is_finite(loss: Tensor) -> bool:
    """False for a non-finite loss on the CPU, where reading it costs no device sync; True
    for a loss on an accelerator, which is not read here (the logging steps check it).
    (tests/test_no_sync.py exempts this one read by name.)"""
    return loss.device.type != "cpu" or bool(torch.isfinite(loss))


class GenerativeModule(L.LightningModule):
    """Base of every model: holds what all of them share.

    Args:
        data_info: `DataInfo.as_dict()` of the training data (shape, num_classes, kind).
        latent_dim: size of the prior sample z.
        n_grid: size of the fixed-noise buffer used for sample grids.
        ema: `{decay, start_step}`; decay None disables the generator EMA.
        gradient_clip_val / gradient_clip_algorithm: applied before every optimizer step
            (after AMP unscaling).
        seed: seeds the fixed noise.
        compile: torch.compile the nets named in `uses_nets` in place when training starts.
        channels_last: channels_last memory format for 4D weights and image batches.
        members: the member seeds of an ensemble (the config's `seeds`): the nets built by
            `build_members` hold one member per seed, each with its own init, trained on its
            own chunk of every batch with its own noise (`sample_latent`); sampling, grids
            and metrics use member `sample_member` (`as_member(k)`). None: a plain run.
        on_nonfinite: `run.on_nonfinite`: "stop" raises NonFiniteError (exit 3) on a
            non-finite loss, parameter or epoch sum, "skip_step" also drops an optimizer step
            whose loss or gradient is not finite and counts it (`skipped_steps`). See
            `step_optimizer` and docs/models.md for where each is checked.
    """

    #: the nets a model builds from the config (validated before a run starts)
    uses_nets: tuple[str, ...] = ("generator",)
    #: the net role of a config key where it differs from its name (lit_gen.nets.ROLES),
    #: e.g. {"discriminator": "autoencoder"} for EBGAN
    net_roles: dict[str, str] = {}
    #: True for models that need labels (conditional sampling)
    conditional: bool = False
    #: DDP must tolerate parameters without gradient in a backward (alternating players)
    ddp_find_unused_parameters: bool = True
    #: D steps per G step in `alternate` (a constructor argument of the models that use it)
    n_critic: int = 1

    # --- what a model declares about itself (checked by tests/models/test_contract.py) ---
    #: the terms it logs, as metrics.json keys ("train/<k>" epoch means, "val/<k>"), with
    #: its `tiny_config` (D penalties add their "train/penalty_<name>" on top)
    logged_terms: tuple[str, ...] = ()
    #: the sample grids it writes (samples/<name>_final.png) on image data
    grid_names: tuple[str, ...] = ("samples",)
    #: run-config sections (an experiment diff; model.name is added) that train it in
    #: seconds on CPU with small nets
    tiny_config: dict[str, Any] = {}
    #: whether it trains members of an ensemble (`seeds`, `build_members`)
    stackable: bool = False

    def __init__(self, *, data_info: dict, latent_dim: int = 64, n_grid: int = 64,
                 ema: dict | None = None, gradient_clip_val: float | None = None,
                 gradient_clip_algorithm: str | None = None, seed: int = 0,
                 compile: bool = False, channels_last: bool = False,
                 on_nonfinite: str = "stop", members: list[int] | None = None):
        super().__init__()
        check_nonfinite_policy(on_nonfinite)
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.data_shape = tuple(data_info["shape"])
        self.num_classes = int(data_info["num_classes"])
        if self.conditional and self.num_classes < 2:
            raise ConfigError(f"model '{type(self).__name__}' is conditional but data "
                              f"'{data_info['name']}' has no labels; choose labelled data")
        self.latent_dim = latent_dim
        if members is not None and not self.stackable:
            raise ConfigError(f"seeds: model '{type(self).__name__}' does not train as an "
                              "ensemble of members; train one run per seed instead")
        if members is not None and len(members) == 0:
            raise ConfigError("seeds: give at least one seed, or null for a plain run")
        self.member_seeds = None if members is None else [int(s) for s in members]
        self.n_members = 1 if members is None else len(members)
        self.sample_member = 0  # the member that sampling, grids and metrics use
        self._member_rngs: list[torch.Generator] | None = None
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer("fixed_noise", torch.randn(n_grid, latent_dim, generator=gen))
        self.register_buffer("fixed_labels", (torch.arange(n_grid) % max(self.num_classes, 1))
                             if self.num_classes else torch.zeros(n_grid, dtype=torch.long))
        # step counters are plain ints (no device sync in the loop), kept in checkpoints
        self.g_steps = 0
        self.d_steps = 0
        self.skip_nonfinite = on_nonfinite == "skip_step"
        self.skipped_steps = 0  # optimizer steps dropped for a non-finite loss or gradient
        self._skipped_in_batch = False
        self._direct_steps = False  # set at fit start (`direct_steps_allowed`)
        #: the BatchGroup being trained (data.group_batches > 1), and whether its current
        #: batch is its last
        self._group: BatchGroup | None = None
        self._last_of_group = True
        self._toggle_others: dict[int, list[nn.Parameter]] = {}
        self.ema_cfg = {"decay": None, "start_step": 0, **(ema or {})}
        self.generator_ema: nn.Module | None = None
        self._train_logs = EpochSums()
        # step values (host tensors) waiting for `write_step_logs`, and the last ones written
        self._step_logs: dict[str, Tensor] = {}
        self.step_metrics: dict[str, Tensor] = {}
        self.step_prog_bar: set[str] = set()
        self._counters: set[str] = set()
        #: the resolved run config (set by `build_model`), saved in the checkpoint's lit_gen
        #: section for evaluation; not a hyper-parameter: the model does not read it
        self.run_config: dict | None = None

    #: plain attributes set on every batch (Lightning's hook bookkeeping, our counters):
    #: set without nn.Module.__setattr__'s parameter/buffer/module checks, which cost a few
    #: microseconds each and add up to tens per batch
    _PLAIN_ATTRIBUTES = frozenset({"_current_fx_name", "g_steps", "d_steps", "_direct_steps",
                                   "_group", "_last_of_group"})

    def __setattr__(self, name: str, value: Any) -> None:
        if name in GenerativeModule._PLAIN_ATTRIBUTES and not isinstance(value, nn.Module | Tensor):
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    # --- generator EMA ----------------------------------------------------------------
    def setup_ema(self) -> None:
        """Call after self.generator exists: keeps an EMA copy when ema.decay is set."""
        if self.ema_cfg["decay"] is not None:
            if not 0.0 < self.ema_cfg["decay"] < 1.0:
                raise ConfigError(f"model.ema.decay must be in (0, 1), got {self.ema_cfg['decay']}")
            self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)

    @torch.no_grad()
    def update_ema(self) -> None:
        if self.generator_ema is None:
            return
        # before start_step the EMA copy just follows the generator
        decay = self.ema_cfg["decay"] if self.g_steps > self.ema_cfg["start_step"] else 0.0
        ema_state = self.generator_ema.state_dict()
        floats, targets = [], []
        for name, value in self.generator.state_dict().items():
            if value.dtype.is_floating_point:
                floats.append(value)
                targets.append(ema_state[name])
            else:
                ema_state[name].copy_(value)
        torch._foreach_lerp_(targets, floats, 1.0 - decay)

    def after_generator_step(self) -> None:
        """The bookkeeping after each generator (decoder) step: the step counter, the EMA."""
        self.g_steps += 1
        self.update_ema()

    def sampling_generator(self) -> nn.Module:
        """The generator used for samples and metrics: the EMA copy when enabled (of member
        `sample_member`, as a plain net, in an ensemble)."""
        net = self.generator_ema if self.generator_ema is not None else self.generator
        return net if self.member_seeds is None else member(net, self.sample_member)

    # --- sampling (one signature across the zoo) --------------------------------------
    def sample_labels(self, n: int) -> Tensor | None:
        """Uniform random labels for conditional models, None otherwise."""
        if not self.conditional:
            return None
        return torch.randint(self.num_classes, (n,), device=self.device)

    def sample_latent(self, n: int) -> Tensor:
        """n prior samples, (n, latent_dim). Training an ensemble, n covers every member's
        chunk and member k's rows come from member k's own stream."""
        draws = Draws(self.member_rngs() if self.training and self.n_members > 1 else None)
        return draws.draw(torch.randn, n, self.latent_dim, device=self.device)

    # --- ensembles of members (config `seeds`) ------------------------------------------
    def build_members(self, *builds: Callable[[], nn.Module]) -> tuple[nn.Module, ...]:
        """Each `build()` once, in order, for a plain run. For an ensemble, per member seed:
        torch seeded with it, then every `build()` in order (so member k starts exactly as
        a plain run of seed k), and each net stacked over the members (lit_gen.nets.members)."""
        if self.member_seeds is None:
            return tuple(build() for build in builds)
        per_member = []
        for s in self.member_seeds:
            torch.manual_seed(s)
            per_member.append([build() for build in builds])
        return tuple(stack_members(list(nets)) for nets in zip(*per_member, strict=True))

    def member_rngs(self) -> list[torch.Generator]:
        if self._member_rngs is None or self._member_rngs[0].device != self.device:
            self.reseed_members(lambda s: s)
        return self._member_rngs  # type: ignore[return-value]

    def reseed_members(self, seed_of: Callable[[int], int]) -> None:
        """Seed member k's noise stream with `seed_of(seed_k)` (each training epoch:
        EpochSeeding, from (seed_k, epoch, rank)). A 1-member ensemble draws from the
        global stream, exactly as a plain run of its seed."""
        if self.member_seeds is None or self.n_members == 1:
            return
        self._member_rngs = [torch.Generator(device=self.device).manual_seed(seed_of(s))
                             for s in self.member_seeds]

    def member_rng_states(self) -> list[Tensor] | None:
        """Each member's noise-stream state, for a mid-epoch checkpoint (the streams are
        seeded at an epoch's start only, so a run resumed inside an epoch needs them); None
        where the members draw from the global stream (a plain run, a 1-member ensemble)."""
        if self._member_rngs is None:
            return None
        return [g.get_state() for g in self._member_rngs]

    def set_member_rng_states(self, states: list[Tensor]) -> None:
        """Restore `member_rng_states()`."""
        if len(states) != self.n_members:
            raise CheckpointError(f"the checkpoint holds the noise streams of {len(states)} "
                                  f"member(s), this model has {self.n_members}")
        rngs = [torch.Generator(device=self.device) for _ in states]
        for g, state in zip(rngs, states, strict=True):
            g.set_state(state)
        self._member_rngs = rngs

    def select_member(self, k: int) -> int:
        """Sampling, grids and metrics use member k from now on; returns the previous one."""
        if not 0 <= k < self.n_members:
            raise ConfigError(f"member {k}: this model has {self.n_members} member(s), "
                              f"0..{self.n_members - 1}")
        previous, self.sample_member = self.sample_member, k
        return previous

    def as_member(self, k: int):
        """A context in which sampling, grids and metrics use member k."""
        return _AsMember(self, k)

    def decode(self, z: Tensor, labels: Tensor | None = None, net: nn.Module | None = None) -> Tensor:
        """Map latent codes (and labels) to data space with the given (default: sampling) net."""
        net = net or self.sampling_generator()
        return net(z) if labels is None else net(z, self.label_condition(labels))

    def label_condition(self, labels: Tensor) -> Tensor:
        """How labels enter the nets: one-hot by default, (B, num_classes)."""
        return nn.functional.one_hot(labels, self.num_classes).float()

    @torch.no_grad()
    def sample(self, n: int, labels: Tensor | None = None) -> Tensor:
        """n samples in data space, (n, *data_shape), in eval mode; labels (n,) for
        conditional models (random when None; ignored by unconditional ones)."""
        with self.eval_mode():
            if self.conditional and labels is None:
                labels = self.sample_labels(n)
            if labels is not None:
                labels = labels.to(self.device)
            z = self.sample_latent(n)
            return self.decode(z, labels if self.conditional else None)

    def class_rows(self) -> tuple[Tensor, Tensor, int]:
        """(z, labels, nrow) for a grid with one row per class: row k shows class k, and
        column j uses the same noise in every row, so only the label changes down a column.

        Uses the first n_grid // num_classes fixed noise vectors (at least one)."""
        per_class = max(len(self.fixed_noise) // self.num_classes, 1)
        labels = torch.arange(self.num_classes, device=self.fixed_noise.device)
        z = self.fixed_noise[:per_class].repeat(self.num_classes, 1)  # (K * per_class, D)
        return z, labels.repeat_interleave(per_class), per_class

    @torch.no_grad()
    def sample_grids(self) -> dict[str, Grid]:
        """Named grids for the sample callback, from the fixed noise buffer; conditional
        models get one row per class (`class_rows`)."""
        with self.eval_mode():
            if self.conditional:
                z, labels, nrow = self.class_rows()
                return {"samples": Grid(self.decode(z, labels), nrow)}
            return {"samples": Grid(self.decode(self.fixed_noise), 8)}

    def eval_mode(self):
        """A context: eval mode for the duration, then the previous mode restored."""
        return eval_mode(self)

    # --- fast paths (model.compile, model.channels_last) --------------------------------
    def configure_model(self) -> None:
        """Called by the Trainer before training (idempotent): channels_last and compile."""

        apply_fast_paths(self, [getattr(self, n, None) for n in self.uses_nets],
                         compile=self.hparams.compile, channels_last=self.hparams.channels_last)

    def transfer_batch_to_device(self, batch, device: torch.device, dataloader_idx: int):
        """A batch that is a tuple/list of tensors (every lit_gen dataset's) moves without
        Lightning's generic walk over the collection (a BatchGroup: each of its batches);
        anything else goes to Lightning."""
        if isinstance(batch, BatchGroup):
            return batch.map(lambda b: self.transfer_batch_to_device(b, device, dataloader_idx))
        if isinstance(batch, tuple | list) and all(isinstance(t, Tensor) for t in batch):
            if all(t.device == device for t in batch):
                return batch  # already there (data.on_device, CPU training)
            # as Lightning: asynchronous copies except to CPU / MPS
            non_blocking = device.type not in ("cpu", "mps")
            moved = [t.to(device, non_blocking=non_blocking) for t in batch]
            return type(batch)(*moved) if hasattr(batch, "_fields") else type(batch)(moved)
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        if isinstance(batch, BatchGroup):
            return batch.map(lambda b: self.on_after_batch_transfer(b, dataloader_idx))
        if self.hparams.channels_last and isinstance(batch, tuple | list) and batch \
                and isinstance(batch[0], Tensor) and batch[0].ndim == 4:
            batch = (batch[0].contiguous(memory_format=torch.channels_last), *batch[1:])
        return batch

    # --- shared plumbing --------------------------------------------------------------
    def step_optimizer(self, opt, loss: Tensor, name: str = "loss",
                       terms: dict[str, Tensor | float] | None = None) -> bool:
        """zero_grad, backward (AMP-scaled by Lightning), step; clipping happens in
        `on_before_optimizer_step`, after Lightning has unscaled AMP gradients.

        The non-finite guard, where it costs no host sync: a CPU loss is checked before its
        backward (`name` and `terms` name it in the error). On an accelerator the loss is not
        read per step; the logged values and the epoch sums are checked on the logging steps
        (`log_terms`), parameters at the end of each epoch and before each checkpoint. With
        `on_nonfinite=skip_step` the loss and the gradients are read after every backward
        (one host sync per step, on every device) and a non-finite step is dropped and
        counted; under fp16 AMP Lightning's grad scaler already skips steps with inf/NaN
        gradients, so only the loss is read. Returns False for a dropped step."""
        direct = self._direct_steps
        raw = opt.optimizer if direct else opt
        raw.zero_grad(set_to_none=True)
        if self.n_members > 1:
            # every term is a mean over all members' rows, i.e. the members' mean: scaled to
            # their sum, member k's parameters get exactly member k's own gradient
            loss = loss * self.n_members
        if self.skip_nonfinite:
            self.manual_backward(loss)
            if self._on_any_rank(not bool(torch.isfinite(loss)) or not self._grads_finite(opt)):
                opt.zero_grad(set_to_none=True)
                self.skipped_steps += 1
                self._skipped_in_batch = True
                return False
            opt.step()
            return True
        if self._world_size() == 1 and not cpu_loss_is_finite(loss):
            raise self.nonfinite_error(name, {name: loss, **(terms or {})})
        if direct:
            self._direct_step(raw, loss)
            return True
        self.manual_backward(loss)
        opt.step()
        return True

    def _direct_step(self, raw: torch.optim.Optimizer, loss: Tensor) -> None:
        """backward and step as Lightning's manual_backward + LightningOptimizer.step do them
        when nothing hooks into them (see `direct_steps_allowed`): the same arithmetic and
        step counting (trainer.global_step), without the per-call hook dispatch, which
        costs a few tenths of a millisecond per optimizer step on a CPU, as much as a toy
        model's whole step."""
        loss.backward()
        self.on_before_optimizer_step(raw)  # gradient clipping
        progress = self._trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress
        progress.increment_ready()
        raw.step()
        progress.increment_completed()

    def on_fit_start(self) -> None:
        self._direct_steps = direct_steps_allowed(self)
        self._toggle_others = {}  # this fit's optimizers

    def on_fit_end(self) -> None:
        self._direct_steps = False

    @contextlib.contextmanager
    def toggled_optimizer(self, optimizer):
        """Only `optimizer`'s parameters need gradients inside (Lightning's toggle, with the
        other optimizers' parameters listed once per optimizer instead of at every call):
        their requires_grad is set False and restored on exit."""
        key = id(optimizer)
        others = self._toggle_others.get(key)
        if others is None:
            mine = {id(p) for g in optimizer.param_groups for p in g["params"]}
            seen: set[int] = set()
            others = []
            for opt in self.trainer.optimizers:
                for group in opt.param_groups:
                    for p in group["params"]:
                        if id(p) not in mine and id(p) not in seen:
                            seen.add(id(p))
                            others.append(p)
            self._toggle_others[key] = others
        state = [p.requires_grad for p in others]
        for p in others:
            p.requires_grad = False
        try:
            yield
        finally:
            for p, flag in zip(others, state):
                p.requires_grad = flag

    # --- the non-finite guard ---------------------------------------------------------------
    def _world_size(self) -> int:
        return self._trainer.world_size if self._trainer is not None else 1

    def _on_any_rank(self, flag: bool) -> bool:
        """`flag` on any rank (a collective under DDP, so every rank takes the same branch)."""
        if self._world_size() < 2:
            return flag
        t = torch.tensor(float(flag), device=self.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item())

    def _grads_finite(self, opt) -> bool:
        """The gradients of `opt`'s parameters are finite (False when their norm overflows);
        not read under fp16 AMP, whose grad scaler skips such steps itself."""
        trainer = self._trainer
        if trainer is not None and getattr(trainer.precision_plugin, "scaler", None) is not None:
            return True
        grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
        return not grads or bool(torch.isfinite(torch.stack(torch._foreach_norm(grads))).all())

    def where(self) -> str:
        """The current step, for messages."""
        trainer = self._trainer
        text = f"after {self.g_steps} generator steps"
        if trainer is not None:
            text += (f" (Lightning global step {trainer.global_step}, epoch "
                     f"{trainer.current_epoch})")
        return text

    def nonfinite_error(self, what: str, terms: dict[str, Tensor | float]) -> NonFiniteError:
        """The error that stops a run, naming the step and the non-finite terms."""
        values = {k: float(v.detach()) if isinstance(v, Tensor) else float(v)
                  for k, v in terms.items()}
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        shown = ", ".join(f"{k}={v}" for k, v in bad.items()) or what
        return NonFiniteError(
            f"non-finite {what} {self.where()}: {shown}. Stopped; the last finite checkpoint "
            "is kept. Lower the learning rate or clip gradients (trainer.gradient_clip_val), "
            "or set run.on_nonfinite=skip_step to drop such steps")

    def nonfinite_parameters(self) -> list[str]:
        """Names of the parameters and float buffers holding a non-finite value (one sync)."""
        named = [(n, t) for n, t in (*self.named_parameters(), *self.named_buffers())
                 if t.is_floating_point() and t.numel()]
        if not named:
            return []
        flags = finite_flags([t.detach() for _, t in named]).cpu()
        return [n for (n, _), ok in zip(named, flags.tolist()) if not ok]

    def check_finite_parameters(self) -> None:
        """Stop on a non-finite parameter or buffer (DDP keeps them equal on every rank, so
        every rank decides alike without a collective)."""
        bad = self.nonfinite_parameters()
        if bad:
            raise self.nonfinite_error("parameters", {n: math.nan for n in bad[:5]})

    def check_finite_state(self) -> None:
        """Stop on a non-finite parameter or epoch sum (one host sync; a collective under
        DDP for the sums, which differ between ranks)."""
        self.check_finite_parameters()
        ok = self._train_logs.all_finite()
        if self._on_any_rank(ok is not None and not bool(ok)):
            raise self.epoch_sums_error()

    def epoch_sums_error(self) -> NonFiniteError:
        sums = {f"{k} (epoch sum)": v for k, v in self._train_logs.sums.items()}
        return self.nonfinite_error("epoch sums of the logged terms", host_scalars(sums))

    def training_step(self, batch, batch_idx: int) -> None:
        """Lightning's training batch: one batch of the data (`train_batch`, which each model
        implements), or with `data.group_batches=K` a `BatchGroup` of K consecutive ones,
        trained in turn with their own indices in the epoch, exactly as K Lightning batches
        would be. A group stops where `trainer.max_steps` stops a run of single batches, and
        writes its step logs once, on the last batch it trains (`is_log_step`)."""
        if not isinstance(batch, BatchGroup):
            return self.train_batch(batch, batch_idx)
        self._group = batch
        try:
            for j, b in enumerate(batch.batches):
                self._last_of_group = j + 1 == len(batch.batches)
                self.train_batch(b, batch_idx * batch.size + j)
                if self._max_steps_reached():
                    break
        finally:
            self._group, self._last_of_group = None, True

    def _max_steps_reached(self) -> bool:
        trainer = self._trainer
        return trainer is not None and 0 <= trainer.max_steps <= trainer.global_step

    def epoch_batches(self) -> int:
        """Training batches of the data per epoch: Lightning's count, or in a BatchGroup the
        data's (a group holds several)."""
        if self._group is not None:
            return self._group.epoch_batches
        return max(int(self.trainer.num_training_batches), 1)

    def alternate(self, phases: Sequence[Phase], prog_bar=()) -> None:
        """One training batch of a model with a discriminator: the D phases on every batch,
        the G phases on every `n_critic`-th, in the order given, each with its optimizer
        toggled; then the step counters, the EMA and the logs (the terms of every phase run).

        The one D/G alternation of the zoo: the GAN loop and the autoencoder-adversarial
        models (WAE-GAN, AAE, VAE-GAN) describe their phases and call this."""
        g_turn = (self.d_steps + 1) % self.n_critic == 0
        logs: dict[str, Tensor | float] = {}
        for phase in phases:
            if phase.player == "g" and not g_turn:
                continue
            with self.toggled_optimizer(phase.optimizer):
                out = phase.loss()
                self.step_optimizer(phase.optimizer, out.loss, phase.name, out.logs)
            if phase.after is not None:
                phase.after(out)
            logs.update(out.logs)
        self.d_steps += 1
        if g_turn:
            self.after_generator_step()
        self.log_step(logs, prog_bar)

    def log_step(self, logs: dict[str, Tensor | float], prog_bar=()) -> None:
        """Log a training batch's terms and the generator step counter (and the count of
        dropped steps with run.on_nonfinite=skip_step)."""
        self.log_terms(logs, prog_bar=prog_bar)
        self.log_step_counter("g_step", self.g_steps)
        if self.skip_nonfinite:
            self.log_step_counter("skipped_steps", self.skipped_steps)

    def on_before_optimizer_step(self, optimizer) -> None:
        if self.hparams.gradient_clip_val:
            self.clip_gradients(optimizer, gradient_clip_val=self.hparams.gradient_clip_val,
                                gradient_clip_algorithm=self.hparams.gradient_clip_algorithm or "norm")

    def log_terms(self, logs: dict[str, Tensor | float], prefix: str = "train", prog_bar=()) -> None:
        """Log named scalars. Validation/test terms go to Lightning as they are (epoch means,
        synchronised across ranks). Training terms never make the step wait for the device:
        they are summed on the device every step (`train/<k>_epoch`: the mean over the
        epoch's steps, logged through Lightning at epoch end), and copied to the host in one
        transfer only on the steps Lightning writes logs (`trainer.log_every_n_steps`), where
        they go to the loggers as `train/<k>_step` (see `write_step_logs`)."""
        if prefix != "train":
            for k, v in logs.items():
                self.log(f"{prefix}/{k}", v.detach() if isinstance(v, Tensor) else v,
                         on_step=False, on_epoch=True, prog_bar=k in prog_bar, sync_dist=True)
            return
        if self._skipped_in_batch:  # a dropped step's terms are not finite: not logged
            self._skipped_in_batch = False
            return
        self._train_logs.add(logs, prog_bar)
        if self.is_log_step():
            # the epoch sums' finiteness comes along in the one transfer of the step values
            sums_ok = self._train_logs.all_finite()
            values = host_scalars({**logs, **({_SUMS_FINITE: sums_ok} if sums_ok is not None else {})})
            sums_bad = not bool(values.pop(_SUMS_FINITE, 1.0))
            values_bad = not all(math.isfinite(float(v)) for v in values.values())
            if self._on_any_rank(sums_bad or values_bad):
                if sums_bad and not values_bad:  # finite now, but not on every step since
                    raise self.epoch_sums_error()
                raise self.nonfinite_error("logged terms", values)
            for k, v in values.items():
                self._step_logs[f"train/{k}_step"] = v
                if k in prog_bar:
                    self.step_prog_bar.add(f"train/{k}_step")

    def log_step_counter(self, name: str, value: int) -> None:
        """Log an int counter (e.g. `g_step`) with the step values, on the steps Lightning
        writes logs; shown in the progress bar."""
        if self.is_log_step():
            self._step_logs[name] = torch.tensor(float(value))
            self.step_prog_bar.add(name)
            self._counters.add(name)

    def is_log_step(self) -> bool:
        """True on the training steps whose logs Lightning writes (every
        `trainer.log_every_n_steps` batches); True outside a Trainer."""
        trainer = self._trainer
        if trainer is None:
            return True
        # Lightning's own test, made to be called during a step (see its `+ 1` comment); in a
        # BatchGroup, on the last batch it trains (called after the batch's optimizer steps)
        last = self._last_of_group or self._max_steps_reached()
        return last and bool(trainer._logger_connector.should_update_logs)

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        self.write_step_logs()
        # the epoch's last batch: before validation, sample grids, metrics and checkpoints
        if self._trainer is not None and batch_idx + 1 == self._trainer.num_training_batches:
            self.check_finite_state()

    def write_step_logs(self) -> None:
        """Hand this step's `train/<k>_step` values (host tensors) to the loggers, at the step
        number Lightning gives its own step logs, and keep them for the progress bar.

        Why not `self.log(..., on_step=True)`: Lightning's result collection costs about
        0.5 ms per logged key and call on a CPU (it deep-copies the key's metadata every
        time), i.e. several ms per logging step for a GAN's terms: more than a small model's
        whole training step. The values are already on the host; the loggers are what
        Lightning would call with them. Consequence: step values are not in
        `trainer.callback_metrics` (nothing monitors a single step; `run.monitor` refuses
        `_step` keys); epoch means are, as before."""
        if not self._step_logs:
            return
        trainer = self._trainer
        metrics = dict(self._step_logs)
        self._step_logs.clear()
        self.step_metrics = metrics
        if trainer is None or not trainer.loggers:
            return
        # Lightning logs step values at the count of batches that stepped before this one
        # (`_LoggerConnector.log_metrics`) and adds the epoch
        step = trainer.fit_loop.epoch_loop._batches_that_stepped
        scalars = {k: float(v) for k, v in metrics.items()}
        scalars["epoch"] = trainer.current_epoch
        for logger in trainer.loggers:
            logger.log_metrics(scalars, step=step)
            logger.save()

    def progress_bar_step_metrics(self) -> dict[str, float | int]:
        """The latest step values shown in the progress bar (host floats)."""
        out: dict[str, float | int] = {}
        for k, v in self.step_metrics.items():
            if k in self.step_prog_bar:
                value = float(v)
                # counters (g_step) show as integers
                out[k] = int(value) if k in self._counters and value.is_integer() else value
        return out

    def on_train_epoch_start(self) -> None:
        self._train_logs.reset()

    def on_train_epoch_end(self) -> None:
        for k, (v, prog_bar) in self._train_logs.means().items():
            self.log(f"train/{k}_epoch", v, on_step=False, on_epoch=True, prog_bar=prog_bar)
        if self.skip_nonfinite:
            self.log("train/skipped_steps", float(self.skipped_steps), on_step=False, on_epoch=True)
        self._train_logs.reset()
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return
        for s in schedulers if isinstance(schedulers, list) else [schedulers]:
            s.step()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # never replace a finite checkpoint with a non-finite one (Lightning writes the file
        # after this hook)
        self.check_finite_parameters()

        # the registry entry (`model.name`) rebuilds the model with the hyper-parameters
        checkpoint["lit_gen"] = {"model": registry_name(type(self)), "version": __version__,
                                 "g_steps": self.g_steps, "d_steps": self.d_steps,
                                 "skipped_steps": self.skipped_steps,
                                 "run_config": self.run_config}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("lit_gen", {})
        self.g_steps = int(state.get("g_steps", 0))
        self.d_steps = int(state.get("d_steps", 0))
        self.skipped_steps = int(state.get("skipped_steps", 0))

    @classmethod
    def hparam_names(cls) -> set[str]:
        """Every constructor argument along the class hierarchy (for config validation)."""
        import inspect

        names: set[str] = set()
        for klass in cls.__mro__:
            if klass is GenerativeModule.__mro__[1]:
                break
            if "__init__" in vars(klass):
                for n, p in inspect.signature(klass.__init__).parameters.items():
                    if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and n != "self":
                        names.add(n)
        return names


class _AsMember:
    def __init__(self, model: GenerativeModule, k: int):
        self.model, self.k = model, k

    def __enter__(self) -> GenerativeModule:
        self.previous = self.model.select_member(self.k)
        return self.model

    def __exit__(self, *exc) -> None:
        self.model.sample_member = self.previous


MODELS: Registry[type[GenerativeModule]] = Registry("model")


def registry_name(cls: type[GenerativeModule]) -> str | None:
    """The name `cls` is registered under in MODELS (None for an unregistered class)."""
    return next((n for n in MODELS.names() if MODELS.get(n) is cls), None)


def check_model_params(cls: type[GenerativeModule], params: dict, common: set[str]) -> None:
    """`model.params` may only hold arguments specific to this model class (`common`: the
    arguments filled from other config keys)."""
    valid = sorted(cls.hparam_names() - common)
    for name in params:
        if name not in valid:
            raise ConfigError(f"unknown key 'model.params.{name}' for model '{cls.__name__}'. "
                              f"Valid keys: {', '.join(valid) or '(none)'}")


__all__ = ["MODELS", "Batch", "GenerativeModule", "Grid", "LossOutput", "Phase", "build_optimizer",
           "build_scheduler", "check_kwargs", "default_optim"]
