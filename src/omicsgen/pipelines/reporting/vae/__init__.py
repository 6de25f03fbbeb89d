"""``vae`` reporting: clustering metrics (ARI, NMI, silhouette, per-bin precision/recall) and figures."""

from omicsgen.pipelines.reporting.vae.pipeline import create_pipeline

__all__ = ["create_pipeline"]
