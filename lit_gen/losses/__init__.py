"""Loss functions (pure functions, no state) and D penalties, by name."""

from lit_gen.losses.adversarial import LOSSES, AdversarialLoss
from lit_gen.losses.penalties import PENALTIES, Penalty, input_gradient_norm

__all__ = ["LOSSES", "PENALTIES", "AdversarialLoss", "Penalty", "input_gradient_norm"]
