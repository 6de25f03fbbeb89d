"""Data engineering: validate, QC, normalise, HVG, split and balance each dataset."""

from omicsgen.pipelines.data_engineering.pipeline import (
    DATASETS,
    create_dataset_pipeline,
    create_pipeline,
)

__all__ = ["DATASETS", "create_dataset_pipeline", "create_pipeline"]
