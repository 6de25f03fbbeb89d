"""scGen: perturbation prediction and batch removal by latent-space vector arithmetic.

``module`` (the VAE), ``plan`` (its training step), ``model`` (:class:`ScGen` over AnnData).
"""

from omicsgen.models.scgen.model import (
    ScGen,
    check_perturbation_inputs,
    remove_batch_effect,
    shift_batches_in_latent,
)

__all__ = ["ScGen", "check_perturbation_inputs", "remove_batch_effect", "shift_batches_in_latent"]
