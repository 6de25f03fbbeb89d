"""The VAE's training plan: Adam on ``Σ_features (x − x̂)² + β_t · KL(q(z|x) ‖ N(0, I))``.

The squared error is summed over features, as in LRBinner, so β is comparable across
feature counts only through that sum; β_t rises linearly to β over ``kl_warmup_epochs``.
With a count decoder (``likelihood: negative_binomial``) the squared error is replaced by
the negative log-likelihood of the raw counts, summed over features, under a negative
binomial whose mean is the sample's library size × the decoder's share (scVI's).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from omicsgen.models.base import ConfigSection
from omicsgen.models.nn import kl_to_standard_normal, reparameterise
from omicsgen.models.training import TrainingPlan
from omicsgen.models.vae.module import Decoder, Encoder


@dataclass(frozen=True)
class VAEPlanConfig(ConfigSection):
    """The ``plan`` section.

    Attributes:
        beta: Weight of the KL term against the feature-summed squared error.
        kl_warmup_epochs: Epochs over which β rises linearly from 0 (0: no warm-up).
        learning_rate: Adam's learning rate.
        weight_decay: Adam's L2 penalty.
    """

    beta: float = 1.0
    kl_warmup_epochs: int = 0
    learning_rate: float = 1e-3
    weight_decay: float = 0.0


def negative_binomial_log_likelihood(
    counts: torch.Tensor, mean: torch.Tensor, theta: torch.Tensor, eps: float = 1e-8
) -> torch.Tensor:
    """log NB(counts | mean, inverse dispersion θ), elementwise (the mean–θ parametrisation
    scVI uses: variance = mean + mean²/θ)."""
    log_theta_mean = torch.log(theta + mean + eps)
    return (
        theta * (torch.log(theta + eps) - log_theta_mean)
        + counts * (torch.log(mean + eps) - log_theta_mean)
        + torch.lgamma(counts + theta)
        - torch.lgamma(theta)
        - torch.lgamma(counts + 1.0)
    )


class VAETrainingPlan(TrainingPlan):
    """One Adam step on ``Σ (x − x̂)² + β_t · KL`` per minibatch."""

    def __init__(self, encoder: Encoder, decoder: Decoder, config: VAEPlanConfig | None = None) -> None:
        self.config = config or VAEPlanConfig()
        self.encoder, self.decoder = encoder, decoder
        params = [*encoder.parameters(), *decoder.parameters()]
        self.optimiser = torch.optim.Adam(params, lr=self.config.learning_rate, weight_decay=self.config.weight_decay)

    def modules(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder, "decoder": self.decoder}

    def beta_at(self, epoch: int) -> float:
        beta, warmup = float(self.config.beta), int(self.config.kl_warmup_epochs)
        if warmup <= 0:
            return beta
        return beta * min(1.0, epoch / warmup)

    def _losses(self, batch: Mapping[str, torch.Tensor], beta: float) -> dict[str, torch.Tensor]:
        x = batch["x"]
        mean, logvar = self.encoder(x)
        z = reparameterise(mean, logvar)
        decoded = self.decoder(z, batch.get("batch"))
        if self.decoder.count_output:
            counts = batch["counts"]
            expected = counts.sum(dim=1, keepdim=True) * decoded
            log_likelihood = negative_binomial_log_likelihood(counts, expected, self.decoder.log_theta.exp())
            reconstruction = -log_likelihood.sum(dim=1).mean()
        else:
            reconstruction = (decoded - x).pow(2).sum(dim=1).mean()
        kl = kl_to_standard_normal(mean, logvar).mean()
        return {"loss": reconstruction + beta * kl, "reconstruction": reconstruction, "kl": kl}

    def training_step(self, batch: dict[str, torch.Tensor], epoch: int) -> Mapping[str, Any]:
        losses = self._losses(batch, self.beta_at(epoch))
        self.optimiser.zero_grad()
        losses["loss"].backward()
        self.optimiser.step()
        return losses

    def validation_step(self, batch: dict[str, torch.Tensor]) -> Mapping[str, Any]:
        # Validation always uses the final β, so that epochs stay comparable for early stopping.
        return self._losses(batch, float(self.config.beta))
