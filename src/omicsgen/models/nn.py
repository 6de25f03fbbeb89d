"""Building blocks the methods' networks share: the MLP stack, the Gaussian latent, its KL."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "tanh": nn.Tanh}


def mlp(  # noqa: PLR0913
    sizes: Sequence[int],
    *,
    activation: str = "relu",
    batch_norm: bool = True,
    dropout: float = 0.0,
    batch_norm_momentum: float = 0.1,
    batch_norm_eps: float = 1e-5,
    first_linear: type[nn.Linear] = nn.Linear,
    output: int | None = None,
) -> nn.Sequential:
    """``len(sizes) - 1`` hidden layers of Linear → (BatchNorm) → activation → (Dropout),
    then, with ``output``, one plain Linear to that many units.

    ``batch_norm_momentum=0.01, batch_norm_eps=1e-3`` gives Keras' batch norm (scGen's);
    ``first_linear`` lets a method store its first weight differently (scGen's input-major layer).
    """
    layers: list[nn.Module] = []
    for index, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append((first_linear if index == 0 else nn.Linear)(n_in, n_out))
        if batch_norm:
            layers.append(nn.BatchNorm1d(n_out, momentum=batch_norm_momentum, eps=batch_norm_eps))
        layers.append(ACTIVATIONS[activation]())
        if dropout:
            layers.append(nn.Dropout(dropout))
    if output is not None:
        layers.append(nn.Linear(sizes[-1], output))
    return nn.Sequential(*layers)


def reparameterise(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """A draw from N(mean, exp(log_var)) that gradients flow through."""
    return mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)


def kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_var)) ‖ N(0, I)) per sample, summed over latent dimensions."""
    return 0.5 * (mean.pow(2) + log_var.exp() - log_var - 1).sum(dim=1)
