"""VAE reporting: ``metrics.json`` and figures (per-bin purity for sequence datasets)."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from omicsgen.pipelines.reporting.vae import nodes


def create_pipeline(kind: str = "perturbation") -> Pipeline:
    metrics = nodes.binning_metrics if kind == "sequences" else nodes.clustering_metrics
    return pipeline(
        [
            node(metrics, ["embedding", "settings"], "metrics", name="metrics"),
            node(nodes.umap_figure, ["embedding", "settings", "metrics"], "umap_figure", name="umap_figure"),
            node(nodes.training_figure, "training", "training_figure", name="training_figure"),
        ]
    )
