"""AIF report: scIB metrics of AIF and the baselines, UMAPs, metrics table."""

from omicsgen.pipelines.reporting.aif.pipeline import create_pipeline

__all__ = ["create_pipeline"]
