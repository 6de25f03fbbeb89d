"""AIF batch correction: train, correct, baselines; plus the Dask grid searches."""

from omicsgen.pipelines.modelling.aif.pipeline import (
    DATASETS,
    create_extra_pipelines,
    create_pipeline,
)

__all__ = ["DATASETS", "create_extra_pipelines", "create_pipeline"]
