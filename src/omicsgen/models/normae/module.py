"""NormAE's networks (torch modules only): the autoencoder, its batch/order mapper and the
two adversaries that read the latent code."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from omicsgen.models.nn import mlp


class NormAEModule(nn.Module):
    """Encoder → latent; decoder (the encoder mirrored) reconstructs from
    ``latent + mapper(one-hot batch, injection order)``; the batch classifier and the
    injection-order ranker read the latent.

    The corrected data is ``decoder(latent)``: the reconstruction without the batch and
    injection-order term.
    """

    def __init__(  # noqa: PLR0913
        self,
        n_features: int,
        n_batches: int,
        *,
        encoder_hidden: Sequence[int],
        latent_dim: int,
        mapper_hidden: Sequence[int],
        classifier_hidden: Sequence[int],
        ranker_hidden: Sequence[int],
        dropout: float,
    ):
        super().__init__()
        # created in this order: the same seed gives the same initial weights
        self.encoder = mlp([n_features, *encoder_hidden], dropout=dropout, output=latent_dim)
        self.decoder = mlp([latent_dim, *reversed(encoder_hidden)], dropout=dropout, output=n_features)
        # input: one-hot batch + injection order scaled to [0, 1]
        self.mapper = mlp([n_batches + 1, *mapper_hidden], output=latent_dim)
        self.batch_classifier = mlp([latent_dim, *classifier_hidden], dropout=dropout, output=n_batches)
        # the ranker has no batch norm: its score must compare samples across a minibatch
        self.order_ranker = mlp([latent_dim, *ranker_hidden], dropout=dropout, batch_norm=False, output=1)

    def autoencoder_parameters(self) -> list[nn.Parameter]:
        """Encoder, decoder and mapper: what the reconstruction step trains."""
        return [p for net in (self.encoder, self.decoder, self.mapper) for p in net.parameters()]

    def adversary_parameters(self) -> list[nn.Parameter]:
        return [p for net in (self.batch_classifier, self.order_ranker) for p in net.parameters()]

    def reconstruct(self, latent: torch.Tensor, batch_onehot: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
        """decoder(latent + mapper(batch, order)): the reconstruction with the batch and
        injection-order effects."""
        condition = torch.cat([batch_onehot, order[:, None]], dim=1)
        return self.decoder(latent + self.mapper(condition))

    def correct(self, x: torch.Tensor) -> torch.Tensor:
        """decoder(encoder(x)): the data without batch and injection-order effects."""
        return self.decoder(self.encoder(x))

    def forward(
        self, x: torch.Tensor, batch_onehot: torch.Tensor, order: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(corrected, reconstructed, latent)."""
        latent = self.encoder(x)
        return self.decoder(latent), self.reconstruct(latent, batch_onehot, order), latent
