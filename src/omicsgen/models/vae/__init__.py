"""The VAE (embedding of any samples × features AnnData): networks in ``module``, training
plan in ``plan``, the :class:`VAE` model class in ``model``."""

from omicsgen.models.vae.model import VAE

__all__ = ["VAE"]
