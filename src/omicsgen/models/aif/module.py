"""AIF's networks (torch modules only).

- :class:`ConditionalVAE`: encoder ``x → (μ, log σ², batch logits)``; decoder
  ``(z, one-hot batch) → x̂``. The encoder's batch head lets the re-encoded reconstruction
  be classified too ("classification after reconstruction").
- :class:`Auxiliary`: predicts the batch from ``z`` (the encoder's adversary).
- :class:`Discriminator`: real cells vs reconstructions (one logit).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from omicsgen.models.nn import mlp


class ConditionalVAE(nn.Module):
    """Encoder with a batch head, decoder conditioned on a one-hot batch label."""

    def __init__(self, n_genes: int, n_batches: int, latent_dim: int, hidden: Sequence[int], nonneg: bool = True):
        super().__init__()
        self.n_genes, self.n_batches = n_genes, n_batches
        self.encoder = mlp([n_genes, *hidden])
        self.mean = nn.Linear(hidden[-1], latent_dim)
        self.log_var = nn.Linear(hidden[-1], latent_dim)
        self.batch_head = nn.Linear(hidden[-1], n_batches)
        self.decoder = mlp([latent_dim + n_batches, *reversed(hidden)], output=n_genes)
        # Raw counts and log-normalised values are non-negative: ReLU output, as the original.
        self.nonneg = nonneg

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.mean(h), self.log_var(h), self.batch_head(h)

    def decode(self, z: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        out = self.decoder(torch.cat([z, F.one_hot(batch, self.n_batches).to(z.dtype)], dim=1))
        return F.relu(out) if self.nonneg else out


class Auxiliary(nn.Module):
    """Batch classifier on the latent space (the adversary of the encoder)."""

    def __init__(self, latent_dim: int, n_batches: int, hidden: Sequence[int]):
        super().__init__()
        self.net = mlp([latent_dim, *hidden], batch_norm=False, output=n_batches)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Discriminator(nn.Module):
    """Real cell vs reconstruction (one logit)."""

    def __init__(self, n_genes: int, hidden: Sequence[int]):
        super().__init__()
        self.net = mlp([n_genes, *hidden], batch_norm=False, output=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def build_modules(
    n_genes: int, n_batches: int, latent_dim: int, hidden: Sequence[int], adversary_hidden: Sequence[int]
) -> dict[str, nn.Module]:
    """The three networks, built in this order (same seed → same initial weights)."""
    return {
        "cvae": ConditionalVAE(n_genes, n_batches, latent_dim, hidden),
        "aux": Auxiliary(latent_dim, n_batches, adversary_hidden),
        "dis": Discriminator(n_genes, adversary_hidden),
    }
