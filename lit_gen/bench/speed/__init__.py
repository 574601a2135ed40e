"""`python -m lit_gen.bench speed`: is lit_gen as fast as plain PyTorch?

The sections, each in its own module (see docs/performance.md):

- `train`: in-process training throughput of lit_gen's DCGAN, WGAN-GP and VAE through the
  real `lightning.Trainer` (`lit`), against a plain PyTorch loop on the same nets, losses,
  optimizers and batches (`plain`), and the plain step in a bare LightningModule
  (Lightning's floor), timed inside the epoch;
- `process`: the whole process, `python -m lit_gen.fit` against an independent plain
  script (`script`), N vs 3N epochs so that start-up cancels, for the experiments named by
  `--experiments`, next to their in-epoch figure; and the thread policy (`--thread-policy`);
- `fid`: FID through lit_gen's metric code against torch-fidelity called directly;
- `measure` (timing, memory, environment), `settings` (what is measured, the targets),
  `report` (targets and table), `cli` (the command line).

This module stays light: the reference script imports its siblings without Lightning.
"""

DESCRIPTION = __doc__


def main(argv: list[str] | None = None) -> int:
    from lit_gen.bench.speed.cli import main as cli

    return cli(argv)
