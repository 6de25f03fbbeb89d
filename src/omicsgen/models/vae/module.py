"""The VAE's networks (torch modules only): x → (μ, log σ²) and z → x̂.

Every hidden layer is Linear → BatchNorm → activation → Dropout
(:func:`omicsgen.models.nn.mlp`), as in the bioinformatics tutorial's VAE, LRBinner and
VAMB; the decoder mirrors the encoder's widths. ``stack`` holds :func:`mlp`'s hidden-layer
options (``activation``, ``batch_norm``, ``dropout``), the same for both networks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from omicsgen.models.nn import mlp


class Encoder(nn.Module):
    """x → (μ, log σ²); ``softplus_logvar`` makes log σ² ≥ 0 (the tutorial's variance ≥ 1)."""

    def __init__(
        self, n_input: int, hidden_dims: Sequence[int], n_latent: int, softplus_logvar: bool = False, **stack: Any
    ) -> None:
        super().__init__()
        self.hidden = mlp([n_input, *hidden_dims], **stack)
        self.mean = nn.Linear(hidden_dims[-1], n_latent)
        self.logvar = nn.Linear(hidden_dims[-1], n_latent)
        self.softplus_logvar = softplus_logvar

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hidden(x)
        logvar = self.logvar(h)
        if self.softplus_logvar:
            logvar = nn.functional.softplus(logvar)
        return self.mean(h), logvar


class Decoder(nn.Module):
    """z → x̂ through the encoder's hidden widths reversed; ``sigmoid_output`` bounds x̂ to [0, 1].

    ``count_output``: x̂ is instead each feature's share of a sample's counts (a softmax, as
    scVI's decoder), and the module holds the negative binomial's log inverse dispersion
    per feature (``log_theta``); the plan scales the shares by the sample's library size.

    ``n_batches`` > 0: the decoder also reads the sample's batch (one-hot beside z), so the
    batch's own shifts need not be stored in z (scVI's conditional decoder; the encoder
    does not read the batch, so a sample is embedded from its features alone).
    """

    def __init__(  # noqa: PLR0913
        self,
        n_latent: int,
        hidden_dims: Sequence[int],
        n_output: int,
        sigmoid_output: bool = False,
        count_output: bool = False,
        n_batches: int = 0,
        **stack: Any,
    ) -> None:
        super().__init__()
        self.net = mlp([n_latent + n_batches, *reversed(hidden_dims)], output=n_output, **stack)
        self.sigmoid_output = sigmoid_output
        self.count_output = count_output
        self.n_batches = n_batches
        if count_output:
            self.log_theta = nn.Parameter(torch.zeros(n_output))

    def forward(self, z: torch.Tensor, batch: torch.Tensor | None = None) -> torch.Tensor:
        """``batch``: the samples' batch codes, needed when the decoder has ``n_batches``."""
        if self.n_batches:
            if batch is None:
                raise ValueError(f"this decoder is conditioned on {self.n_batches} batches: pass each sample's batch code")
            z = torch.cat([z, nn.functional.one_hot(batch, self.n_batches).to(z.dtype)], dim=1)
        out = self.net(z)
        if self.count_output:
            return torch.softmax(out, dim=-1)
        return torch.sigmoid(out) if self.sigmoid_output else out
