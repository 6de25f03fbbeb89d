"""scGAN / cscGAN: :class:`CscGAN` (model), :mod:`.module` (networks), :mod:`.plan` (WGAN-GP
training step). scGAN's preprocessing is :func:`omicsgen.preprocessing.cscgan.preprocess_counts`."""

from omicsgen.models.cscgan.model import (
    CscGAN,
    CscganTrainingConfig,
    ModelConfig,
    assign_cell_types,
)
from omicsgen.models.cscgan.module import (
    ConditionalBatchNorm,
    Critic,
    Generator,
    LibrarySizeNormalisation,
)
from omicsgen.models.cscgan.plan import CscganPlan, PlanConfig, flushed_denormals

__all__ = [
    "ConditionalBatchNorm",
    "Critic",
    "CscGAN",
    "CscganPlan",
    "CscganTrainingConfig",
    "Generator",
    "LibrarySizeNormalisation",
    "ModelConfig",
    "PlanConfig",
    "assign_cell_types",
    "flushed_denormals",
]
