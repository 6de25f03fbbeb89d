"""The VAE's training plan: Adam on ``Σ_features (x − x̂)² + β_t · KL(q(z|x) ‖ N(0, I))``.

The squared error is summed over features, as in LRBinner, so β is comparable across
feature counts only through that sum; β_t rises linearly to β over ``kl_warmup_epochs``.
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

    def _losses(self, x: torch.Tensor, beta: float) -> dict[str, torch.Tensor]:
        mean, logvar = self.encoder(x)
        z = reparameterise(mean, logvar)
        reconstruction = (self.decoder(z) - x).pow(2).sum(dim=1).mean()
        kl = kl_to_standard_normal(mean, logvar).mean()
        return {"loss": reconstruction + beta * kl, "reconstruction": reconstruction, "kl": kl}

    def training_step(self, batch: dict[str, torch.Tensor], epoch: int) -> Mapping[str, Any]:
        losses = self._losses(batch["x"], self.beta_at(epoch))
        self.optimiser.zero_grad()
        losses["loss"].backward()
        self.optimiser.step()
        return losses

    def validation_step(self, batch: dict[str, torch.Tensor]) -> Mapping[str, Any]:
        # Validation always uses the final β, so that epochs stay comparable for early stopping.
        return self._losses(batch["x"], float(self.config.beta))
