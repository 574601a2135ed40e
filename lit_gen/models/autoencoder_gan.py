"""The shared base of GANs whose discriminator is an autoencoder (EBGAN, BEGAN)."""

from __future__ import annotations

import torch
from torch import nn

from lit_gen.models.adversarial import AdversarialModule
from lit_gen.models.base import Batch, tiny_config_over
from lit_gen.nets import AEOutput, build_net

Tensor = torch.Tensor


class AutoencoderGAN(AdversarialModule):
    """D is an autoencoder net (lit_gen.nets.AUTOENCODERS, `model.discriminator`); its
    per-example reconstruction error is the energy, low for real data. `discriminate(x)`
    returns the energy (B,), so D penalties act on it. Not registered: EBGAN and BEGAN
    subclass it and define `energy` and the losses; `model.loss` is not used.
    """

    stackable = False  # labels / heads / shared state: no `seeds` ensembles
    packable = False  # its D reads single samples (labels, heads, reconstructions)

    net_roles = {"discriminator": "autoencoder"}
    logged_terms = ("train/energy_real", "train/energy_fake", "train/d_loss", "train/g_loss",
                    "val/energy_real", "val/energy_fake")
    tiny_config = tiny_config_over(AdversarialModule.tiny_config,
                                   discriminator={"name": "mlp", "code_dim": 8, "hidden": [32]})

    def build_discriminator(self, spec: dict) -> nn.Module:
        return build_net(spec, "autoencoder", "model.discriminator", in_shape=self.data_shape)

    def energy(self, x: Tensor, out: AEOutput) -> Tensor:
        """Per-example reconstruction error (B,) of x under out.recon."""
        raise NotImplementedError

    def discriminate(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        return self.energy(x, self.discriminator(x))

    def energy_logs(self, e_real: Tensor, e_fake: Tensor) -> dict[str, Tensor]:
        """Validation terms from the mean energies of a real and a fake batch."""
        return {"energy_real": e_real, "energy_fake": e_fake}

    def validation_step(self, batch, batch_idx: int) -> None:
        real = Batch(*batch)
        fake = self.generate_fake(len(real.x))
        e_real, e_fake = self.discriminate(real.x).mean(), self.discriminate(fake.x).mean()
        self.log_terms(self.energy_logs(e_real, e_fake), prefix="val")
