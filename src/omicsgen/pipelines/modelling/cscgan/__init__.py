"""scGAN / cscGAN: synthetic cells from raw counts, and rare-type augmentation."""

from omicsgen.pipelines.modelling.cscgan.nodes import bind_dataset, check_inputs
from omicsgen.pipelines.modelling.cscgan.pipeline import create_apply_pipeline, create_pipeline

__all__ = ["bind_dataset", "check_inputs", "create_apply_pipeline", "create_pipeline"]
