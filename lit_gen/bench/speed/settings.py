"""What the speed benchmark measures: its settings, the cases it times and the targets."""

from __future__ import annotations

from dataclasses import dataclass, field

MODEL_CONFIGS = {"dcgan": "dcgan.yaml", "wgan_gp": "wgan_gp.yaml", "vae": "vae.yaml"}
#: the whole-process cases: experiment yaml (conf/experiment/) -> short name
EXPERIMENTS = {"gan_grid2d": "toy GAN", "vae_digits": "MLP VAE", "dcgan_digits": "DCGAN digits"}
#: N of each (N vs 3N epochs): about 600 steps, so that 2N epochs outweigh start-up noise
EXPERIMENT_EPOCHS = {"gan_grid2d": 8, "vae_digits": 25, "dcgan_digits": 3}
RATIO_TARGET = 0.95
FID_SPEEDUP_TARGET = 2.0
#: thread-policy targets (issue 13): a run beside one busy process, and two runs side by side
BUSY_NEIGHBOUR_TARGET = 1.3
SIDE_BY_SIDE_TARGET = 2.5


@dataclass
class Settings:
    """What the benchmark measures; `--quick` swaps in QUICK."""

    models: list[str] = field(default_factory=lambda: ["dcgan", "wgan_gp", "vae"])
    sizes: list[int] = field(default_factory=lambda: [28, 32])
    data: list[str] = field(default_factory=lambda: ["synthetic", "digits"])
    batches: list[str] = field(default_factory=lambda: ["dataloader", "on_device"])
    batch_size: int = 64
    warmup: int = 3
    steps: int = 20
    repeats: int = 3
    precision: str = "32-true"
    compile: bool = False
    channels_last: bool = False
    fid_n: int = 10000
    fid_real: int = 50000
    fid_batch_size: int = 64
    extractors: list[str] = field(default_factory=lambda: ["inception", "classifier"])
    fid_repeats: int = 1
    fast_paths: bool = False
    mnist_root: str | None = None
    seed: int = 0
    skip_train: bool = False
    skip_fid: bool = False
    # "wall": wall-clock throughput; "process": images per second of this process's CPU time
    # (steadier on a shared CPU; meaningless for GPU work, which it does not count)
    clock: str = "wall"
    net_overrides: list[str] = field(default_factory=list)  # e.g. narrower nets for --quick
    # also time the plain step in a bare LightningModule (Lightning's floor; see run_bare)
    lightning_floor: bool = True
    # whole process (`lit_gen.fit` vs a plain script, N vs 3N epochs; see process.py)
    experiments: list[str] = field(default_factory=list)
    epochs: int | None = None  # N (the long runs train 3N); None: EXPERIMENT_EPOCHS or 2
    before_root: str | None = None  # another checkout's lit_gen.fit, timed interleaved
    process_threads: int = 1  # torch threads of both sides (run.threads for lit_gen.fit)
    process_repeats: int = 2
    steps_per_batch: list[int] = field(default_factory=list)  # K-step variants (bare, lit_gen)
    thread_policy: bool = False  # quiet / busy neighbour / two runs side by side


QUICK = Settings(sizes=[28], data=["synthetic"], batch_size=16, warmup=1, steps=3, repeats=1,
                 fid_n=4, fid_real=8, fid_batch_size=16, extractors=["inception", "classifier"],
                 net_overrides=["model.generator.base_channels=16",
                                "model.discriminator.base_channels=16"])


@dataclass(frozen=True)
class TrainCase:
    """One in-process training measurement: a conf/model yaml on a data set and data path."""

    model: str  # dcgan | wgan_gp | vae
    size: int  # 28 or 32 (28: 1 channel like MNIST, 32: 3 channels like CIFAR-10)
    data: str  # synthetic | digits | mnist
    batches: str  # dataloader | on_device

    @property
    def channels(self) -> int:
        return 1 if self.size == 28 or self.data != "synthetic" else 3

    @property
    def name(self) -> str:
        return f"{self.model}-{self.size}px-{self.data}-{self.batches}"


def train_cases(s: Settings) -> list[TrainCase]:
    cases = []
    for model in s.models:
        for size in s.sizes:
            for data in s.data:
                if data != "synthetic" and size != 28:
                    continue  # the real sets here are grey digits: one real-data size
                if data == "mnist" and not s.mnist_root:
                    continue
                for batches in s.batches:
                    cases.append(TrainCase(model, size, data, batches))
    return cases


def is_k_side(side: str) -> bool:
    """A side with K steps per Lightning batch (`process.sides`)."""
    return side.startswith(("lightning_k", "lit_gen_k"))
