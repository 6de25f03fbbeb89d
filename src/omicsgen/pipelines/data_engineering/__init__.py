"""Data engineering: validate, find counts, QC, normalise, HVG and split each declared dataset."""

from omicsgen.pipelines.data_engineering.pipeline import create_dataset_pipeline, create_pipeline

__all__ = ["create_dataset_pipeline", "create_pipeline"]
