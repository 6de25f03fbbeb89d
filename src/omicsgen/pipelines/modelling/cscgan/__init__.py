"""scGAN / cscGAN: synthetic cells from raw Kang counts, and rare-type augmentation."""

from omicsgen.pipelines.modelling.cscgan.pipeline import create_pipeline

DATASETS = ("kang",)

__all__ = ["DATASETS", "create_pipeline"]
