"""NormAE's training plan: one minibatch step of the current phase, its losses and
optimisers, and the QC score that selects the kept epoch.

Every optimiser step clips exactly the parameters it updates (the original code clipped
the wrong network before its ranker step).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from omicsgen.metrics.metabolomics import qc_pca_distance
from omicsgen.models.base import ConfigSection
from omicsgen.models.normae.module import NormAEModule
from omicsgen.models.training import TrainingPlan, apply_in_batches

#: the three phases, in order; each is one call of the shared ``fit``
PHASES = ("autoencoder_pretraining", "adversary_pretraining", "adversarial_training")


@dataclass(frozen=True)
class NormAEPlanConfig(ConfigSection):
    """Losses, optimisers and epoch selection (``plan:``); defaults: the paper's code.

    Attributes:
        lr_autoencoder, lr_batch_classifier, lr_order_ranker: Adam learning rates.
        betas: Adam's betas, shared by both optimisers.
        grad_clip_norm: gradient norm clip of every step.
        lambda_batch, lambda_order: adversarial weights, AE loss = L1 − λ_b·CE − λ_o·rank.
        qc_reconstruction_weight: selection score = QC PCA distance + this × QC L1 loss.
        selection_pca_components: PCA components of the QC distance.
    """

    lr_autoencoder: float = 2e-4
    lr_batch_classifier: float = 5e-3
    lr_order_ranker: float = 5e-4
    betas: tuple[float, float] = (0.5, 0.9)
    grad_clip_norm: float = 1.0
    lambda_batch: float = 1.0
    lambda_order: float = 1.0
    qc_reconstruction_weight: float = 100.0
    selection_pca_components: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))


def pairwise_ranking_loss(scores: torch.Tensor, order: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """Logistic loss over all pairs of one group (batch) whose injection orders differ:
    mean of ``softplus(-(s_j - s_i))`` for ``order_i < order_j``, i.e. how badly the scores
    fail to rank later injections higher. Zero when a minibatch has no such pair."""
    scores = scores.reshape(-1)
    later = order[:, None] < order[None, :]
    same_group = group[:, None] == group[None, :]
    mask = later & same_group
    if not mask.any():
        return scores.sum() * 0.0
    difference = scores[None, :] - scores[:, None]
    return F.softplus(-difference[mask]).mean()


class NormAEPlan(TrainingPlan):
    """One minibatch step of the current phase (``self.phase``), for :func:`fit`.

    ``all_samples`` (every sample's tensors) feeds the QC selection score computed at the
    end of each adversarial epoch.
    """

    def __init__(self, module: NormAEModule, config: NormAEPlanConfig, all_samples: Mapping[str, torch.Tensor]):
        self.module = module
        self.config = config
        self.phase = PHASES[0]
        self.all_samples = all_samples
        self.autoencoder_parameters = module.autoencoder_parameters()
        self.adversary_parameters = module.adversary_parameters()
        self.autoencoder_optimiser = torch.optim.Adam(
            self.autoencoder_parameters, lr=config.lr_autoencoder, betas=config.betas
        )
        self.adversary_optimiser = torch.optim.Adam(
            [
                {"params": module.batch_classifier.parameters(), "lr": config.lr_batch_classifier},
                {"params": module.order_ranker.parameters(), "lr": config.lr_order_ranker},
            ],
            betas=config.betas,
        )

    def modules(self) -> dict[str, nn.Module]:
        return {"module": self.module}

    def _reconstruction_loss(self, batch: Mapping[str, torch.Tensor], latent: torch.Tensor) -> torch.Tensor:
        return F.l1_loss(self.module.reconstruct(latent, batch["batch_onehot"], batch["order"]), batch["x"])

    def _adversary_losses(self, latent: torch.Tensor, batch: Mapping[str, torch.Tensor]):
        batch_ce = F.cross_entropy(self.module.batch_classifier(latent), batch["batch_index"])
        order_rank = pairwise_ranking_loss(self.module.order_ranker(latent), batch["order"], batch["batch_index"])
        return batch_ce, order_rank

    def _adversary_step(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            latent = self.module.encoder(batch["x"])
        batch_ce, order_rank = self._adversary_losses(latent, batch)
        self.adversary_optimiser.zero_grad()
        (batch_ce + order_rank).backward()
        nn.utils.clip_grad_norm_(self.adversary_parameters, self.config.grad_clip_norm)
        self.adversary_optimiser.step()
        return {"batch_ce": batch_ce, "order_rank": order_rank}

    def _autoencoder_step(self, batch: Mapping[str, torch.Tensor], adversarial: bool) -> dict[str, torch.Tensor]:
        latent = self.module.encoder(batch["x"])
        reconstruction = self._reconstruction_loss(batch, latent)
        loss = reconstruction
        logged = {"reconstruction": reconstruction}
        if adversarial:
            batch_ce, order_rank = self._adversary_losses(latent, batch)
            loss = loss - self.config.lambda_batch * batch_ce - self.config.lambda_order * order_rank
            logged.update({"ae_batch_ce": batch_ce, "ae_order_rank": order_rank, "ae_loss": loss})
        self.autoencoder_optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.autoencoder_parameters, self.config.grad_clip_norm)
        self.autoencoder_optimiser.step()
        return logged

    def training_step(self, batch: dict[str, torch.Tensor], epoch: int) -> dict[str, torch.Tensor]:
        if self.phase == "autoencoder_pretraining":
            return self._autoencoder_step(batch, adversarial=False)
        if self.phase == "adversary_pretraining":
            return self._adversary_step(batch)
        return {**self._adversary_step(batch), **self._autoencoder_step(batch, adversarial=True)}

    def validation_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"qc_reconstruction": self._reconstruction_loss(batch, self.module.encoder(batch["x"]))}

    def on_epoch_end(self, epoch: int, record: dict[str, Any]) -> None:
        """In the adversarial phase: the QC distance in a PCA of the corrected data and
        the selection score (``validation_selection_score``, the epoch kept is its minimum)."""
        if self.phase != PHASES[-1]:
            return
        corrected = apply_in_batches(self.module.correct, self.all_samples["x"]).cpu().numpy()
        distance = qc_pca_distance(
            corrected, self.all_samples["is_qc"].cpu().numpy(), self.config.selection_pca_components
        )
        record["validation_qc_pca_distance"] = distance
        record["validation_selection_score"] = (
            distance + self.config.qc_reconstruction_weight * record["validation_qc_reconstruction"]
        )
