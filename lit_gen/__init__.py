"""lit_gen: a PyTorch Lightning experiment suite for GANs and VAEs."""

__version__ = "0.1.0"
