"""AIF batch correction: train, correct, baselines; plus the Dask grid searches."""

from omicsgen.pipelines.modelling.aif.nodes import bind_dataset, check_inputs
from omicsgen.pipelines.modelling.aif.pipeline import create_extra_pipelines, create_pipeline

__all__ = ["bind_dataset", "check_inputs", "create_extra_pipelines", "create_pipeline"]
