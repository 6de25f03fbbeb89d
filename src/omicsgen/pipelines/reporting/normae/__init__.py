"""NormAE reporting: metrics for uncorrected / ComBat / NormAE and figures."""

from omicsgen.pipelines.reporting.normae.pipeline import create_pipeline

__all__ = ["create_pipeline"]
