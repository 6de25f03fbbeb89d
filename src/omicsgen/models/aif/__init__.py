"""AIF: adversarial information factorization for scRNA-seq batch effects.

``module`` (the conditional VAE, the auxiliary batch classifier, the discriminator),
``plan`` (losses, weighting variants, optimisers), ``model`` (:class:`AIF` over AnnData).
"""

from omicsgen.models.aif.model import AIF, AIFModelConfig, validate_batches
from omicsgen.models.aif.plan import LOSS_NAMES, AIFPlanConfig

__all__ = ["AIF", "LOSS_NAMES", "AIFModelConfig", "AIFPlanConfig", "validate_batches"]
