"""cscgan reporting: metrics.json and figures under data/08_reporting/cscgan."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from omicsgen.pipelines.reporting.cscgan import nodes


def create_pipeline(kind: str = "perturbation") -> Pipeline:
    return pipeline(
        [
            node(
                nodes.evaluate_generated_cells,
                ["cells", "generated", "settings"],
                "generation_metrics",
                name="evaluate_generated_cells",
            ),
            node(
                nodes.collect_metrics,
                ["generation_metrics", "augmentation_metrics", "training", "augmentation_training", "settings"],
                "metrics",
                name="collect_metrics",
            ),
            node(nodes.umap_figure, ["cells", "generated", "settings"], "umap_figure", name="plot_umap"),
            node(
                nodes.marker_violin_figure,
                ["cells", "generated", "settings"],
                "marker_violin_figure",
                name="plot_marker_violins",
            ),
            node(nodes.training_curves_figure, "training", "training_curves_figure", name="plot_training_curves"),
        ]
    )
