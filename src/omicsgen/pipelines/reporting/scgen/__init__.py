"""scGen reporting: metrics per held-out type and method, figures."""

from omicsgen.pipelines.reporting.scgen.pipeline import create_pipeline

__all__ = ["create_pipeline"]
