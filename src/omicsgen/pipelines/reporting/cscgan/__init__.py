"""cscgan reporting: realism metrics with a real-vs-real control, augmentation F1, figures."""

from omicsgen.pipelines.reporting.cscgan.pipeline import create_pipeline

__all__ = ["create_pipeline"]
