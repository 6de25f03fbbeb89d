"""``aif`` reporting pipeline."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from omicsgen.pipelines.reporting.aif import nodes


def create_pipeline(kind: str = "scrna_batches") -> Pipeline:
    return pipeline(
        [
            node(
                nodes.integration_metrics,
                ["embeddings", "corrected", "settings"],
                ["metrics", "metrics_table"],
                name="integration_metrics",
            ),
            node(nodes.umap_figure, ["embeddings", "corrected", "settings"], "umap_figure", name="plot_umaps"),
            node(nodes.metrics_table_figure, "metrics_table", "metrics_figure", name="plot_metrics_table"),
        ]
    )
