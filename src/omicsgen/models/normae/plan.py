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

#: ``plan.encoder_objective`` values (NormAEPlanConfig)
ENCODER_OBJECTIVES = ("maximise_adversary_loss", "confuse_adversary")

#: the three phases, in order; each is one call of the shared ``fit``
PHASES = ("autoencoder_pretraining", "adversary_pretraining", "adversarial_training")


@dataclass(frozen=True)
class NormAEPlanConfig(ConfigSection):
    """Losses, optimisers and epoch selection (``plan:``); defaults: the paper's code.

    Attributes:
        lr_autoencoder, lr_batch_classifier, lr_order_ranker: Adam learning rates.
        betas: Adam's betas, shared by both optimisers.
        grad_clip_norm: gradient norm clip of every step.
        lambda_batch, lambda_order: adversarial weights of the autoencoder's loss.
        encoder_objective: what the autoencoder asks of the adversaries.
            ``maximise_adversary_loss`` (the paper): L1 − λ_b·CE − λ_o·rank; the loss is
            maximised by a confidently *wrong* classifier and a *reversed* ranking, both of
            which still carry the batch and the order, so a linear probe can find them.
            ``confuse_adversary``: L1 + λ_b·CE(uniform) + λ_o·rank(½), minimised only when the
            classifier says every batch equally likely and the ranker cannot order a pair
            (a confusion loss, Tzeng et al. 2015; Alvi et al. 2018).
        lambda_batch_means: weight of :func:`batch_mean_spread` of the latent code in the
            autoencoder's adversarial loss (0: the paper, adversaries only). The adversaries
            chase a moving code; this term pins what a linear classifier reads first, the
            batches' mean shifts (ComBat's target), as a plain differentiable penalty.
        lambda_corrected_batch_means: the same penalty on the corrected output
            (decoder(latent), what is scored and exported): the decoder can turn a latent
            code whose batch means agree into output whose means do not.
        qc_reconstruction_weight: selection score = QC PCA distance + this × QC L1 loss
            (+ ``selection_batch_weight`` × the corrected output's batch mean spread).
        selection_batch_weight: weight of :func:`batch_mean_spread` of the corrected, per
            feature standardised output of every sample in the selection score (0: the
            paper, QCs only). A QC-only score can prefer an epoch that still carries the
            batch, because removing a large between-batch variance can widen the QCs'
            remaining spread in a PCA of standardised features.
        selection_pca_components: PCA components of the QC distance.
    """

    lr_autoencoder: float = 2e-4
    lr_batch_classifier: float = 5e-3
    lr_order_ranker: float = 5e-4
    betas: tuple[float, float] = (0.5, 0.9)
    grad_clip_norm: float = 1.0
    lambda_batch: float = 1.0
    lambda_order: float = 1.0
    encoder_objective: str = "maximise_adversary_loss"
    lambda_batch_means: float = 0.0
    lambda_corrected_batch_means: float = 0.0
    qc_reconstruction_weight: float = 100.0
    selection_batch_weight: float = 0.0
    selection_pca_components: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        if self.encoder_objective not in ENCODER_OBJECTIVES:
            raise ValueError(
                f"normae.plan.encoder_objective: {self.encoder_objective!r} is not one of {list(ENCODER_OBJECTIVES)}"
            )


def pairwise_ranking_loss(
    scores: torch.Tensor, order: torch.Tensor, group: torch.Tensor, target: float = 1.0
) -> torch.Tensor:
    """Logistic loss over all pairs of one group (batch) whose injection orders differ: the
    binary cross-entropy of ``sigmoid(s_j - s_i)`` against ``target`` for ``order_i < order_j``.
    ``target=1``: how badly the scores fail to rank later injections higher (the ranker's
    loss); ``target=0.5``: how far the scores are from ranking no pair (the encoder's
    confusion loss, smallest when every score is equal). Zero when a minibatch has no such
    pair."""
    scores = scores.reshape(-1)
    later = order[:, None] < order[None, :]
    same_group = group[:, None] == group[None, :]
    mask = later & same_group
    if not mask.any():
        return scores.sum() * 0.0
    difference = (scores[None, :] - scores[:, None])[mask]
    return (target * F.softplus(-difference) + (1.0 - target) * F.softplus(difference)).mean()


def batch_mean_spread(latent: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """Between-group share of the latent's variance: the size-weighted squared distance of
    each group's mean from the overall mean, over the total variance (0: the groups' means
    coincide; a linear classifier then has no mean shift to find; MMD with a linear kernel)."""
    centred = latent - latent.mean(dim=0)
    groups, index = torch.unique(group, return_inverse=True)
    sums = torch.zeros(len(groups), latent.shape[1], dtype=latent.dtype, device=latent.device)
    sums.index_add_(0, index, centred)
    counts = torch.bincount(index, minlength=len(groups)).to(latent.dtype)
    between = (sums.pow(2).sum(dim=1) / counts).sum() / len(latent)
    return between / centred.pow(2).mean(dim=0).sum().clamp_min(1e-12)


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

    def _encoder_adversarial_terms(self, latent: torch.Tensor, batch: Mapping[str, torch.Tensor]):
        """The batch and order terms the autoencoder minimises (``plan.encoder_objective``)."""
        if self.config.encoder_objective == "maximise_adversary_loss":
            batch_ce, order_rank = self._adversary_losses(latent, batch)
            return -batch_ce, -order_rank
        logits = self.module.batch_classifier(latent)
        uniform = torch.full_like(logits, 1.0 / logits.shape[1])
        batch_confusion = F.cross_entropy(logits, uniform)
        order_confusion = pairwise_ranking_loss(
            self.module.order_ranker(latent), batch["order"], batch["batch_index"], target=0.5
        )
        return batch_confusion, order_confusion

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
            batch_term, order_term = self._encoder_adversarial_terms(latent, batch)
            loss = loss + self.config.lambda_batch * batch_term + self.config.lambda_order * order_term
            logged.update({"ae_batch_term": batch_term, "ae_order_term": order_term})
            if self.config.lambda_batch_means:
                spread = batch_mean_spread(latent, batch["batch_index"])
                loss = loss + self.config.lambda_batch_means * spread
                logged["ae_batch_mean_spread"] = spread
            if self.config.lambda_corrected_batch_means:
                spread = batch_mean_spread(self.module.decoder(latent), batch["batch_index"])
                loss = loss + self.config.lambda_corrected_batch_means * spread
                logged["ae_corrected_batch_mean_spread"] = spread
            logged["ae_loss"] = loss
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
        corrected = apply_in_batches(self.module.correct, self.all_samples["x"])
        distance = qc_pca_distance(
            corrected.cpu().numpy(), self.all_samples["is_qc"].cpu().numpy(), self.config.selection_pca_components
        )
        # per-feature standardised, as a batch classifier sees the data: a shift in a quiet
        # feature counts as much as one in a loud feature
        standardised = (corrected - corrected.mean(dim=0)) / corrected.std(dim=0).clamp_min(1e-8)
        spread = float(batch_mean_spread(standardised, self.all_samples["batch_index"]))
        record["validation_qc_pca_distance"] = distance
        record["validation_corrected_batch_mean_spread"] = spread
        record["validation_selection_score"] = (
            distance
            + self.config.qc_reconstruction_weight * record["validation_qc_reconstruction"]
            + self.config.selection_batch_weight * spread
        )
