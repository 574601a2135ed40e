"""Energy-based GAN terms (pure functions): EBGAN's margin loss and pull-away term, BEGAN's
equilibrium control. Energies are per-example reconstruction errors, shape (B,)."""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def ebgan_d_loss(e_real: Tensor, e_fake: Tensor, margin: float) -> Tensor:
    """Zhao et al. 2017, eq. 1: E[D(x)] + E[max(0, m - D(G(z)))]."""
    return e_real.mean() + torch.relu(margin - e_fake).mean()


def pullaway_term(h: Tensor) -> Tensor:
    """Zhao et al. 2017, eq. 3: mean squared cosine similarity over distinct pairs,
    1 / (N (N - 1)) * sum_{i != j} cos(h_i, h_j)^2, of codes h (N, F), N >= 2.

    0 for mutually orthogonal codes, 1 for identical (or opposite) ones."""
    n = h.shape[0]
    if n < 2:
        raise ValueError("the pull-away term needs at least two codes")
    unit = torch.nn.functional.normalize(h.flatten(1), dim=1)
    cos2 = (unit @ unit.T).pow(2)  # (N, N), diagonal = 1
    return (cos2.sum() - cos2.diagonal().sum()) / (n * (n - 1))


def began_k_update(k: Tensor | float, l_real: Tensor | float, l_fake: Tensor | float,
                   gamma: float, lambda_k: float) -> Tensor:
    """Berthelot et al. 2017, eq. 4: k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1)."""
    k = torch.as_tensor(k, dtype=torch.float32)
    step = torch.as_tensor(gamma * l_real - l_fake, dtype=torch.float32)
    return (k + lambda_k * step).clamp(0.0, 1.0)


def began_convergence(l_real: Tensor | float, l_fake: Tensor | float, gamma: float) -> Tensor:
    """Berthelot et al. 2017, sec. 3.4.1: M_global = L(x) + |gamma L(x) - L(G(z))|."""
    l_real = torch.as_tensor(l_real, dtype=torch.float32)
    return l_real + (gamma * l_real - l_fake).abs()
