"""NormAE: adversarial removal of batch effects and injection-order drift (metabolomics).

``module`` (the networks), ``plan`` (the training step of each phase), ``model``
(:class:`NormAE` over AnnData).
"""

from omicsgen.models.normae.model import (
    RECONSTRUCTED_KEY,
    NormAE,
    NormAEModelConfig,
    NormAETrainingConfig,
)
from omicsgen.models.normae.module import NormAEModule
from omicsgen.models.normae.plan import PHASES, NormAEPlan, NormAEPlanConfig, pairwise_ranking_loss

__all__ = [
    "PHASES",
    "RECONSTRUCTED_KEY",
    "NormAE",
    "NormAEModelConfig",
    "NormAEModule",
    "NormAEPlan",
    "NormAEPlanConfig",
    "NormAETrainingConfig",
    "pairwise_ranking_loss",
]
