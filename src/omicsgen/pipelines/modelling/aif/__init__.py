"""AIF batch correction: train, correct, baselines; the Dask grid searches; applying a
saved model to new cells."""

from omicsgen.pipelines.modelling.aif.nodes import bind_dataset, check_inputs
from omicsgen.pipelines.modelling.aif.pipeline import (
    create_apply_pipeline,
    create_extra_pipelines,
    create_pipeline,
)

__all__ = ["bind_dataset", "check_inputs", "create_apply_pipeline", "create_extra_pipelines", "create_pipeline"]
