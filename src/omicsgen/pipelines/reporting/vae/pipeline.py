"""VAE reporting: ``metrics.json`` and figures for the cells, ``binning_*`` for the reads."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from omicsgen.pipelines.reporting.vae import nodes


def cells_reporting() -> Pipeline:
    return pipeline(
        [
            node(
                nodes.clustering_metrics,
                ["embedding", "params:cells", "params:seed"],
                "metrics",
                name="clustering_metrics",
            ),
            node(
                nodes.umap_figure,
                ["embedding", "params:cells", "metrics"],
                "umap_figure",
                name="umap_figure",
            ),
            node(nodes.training_figure, "training", "training_figure", name="training_figure"),
        ],
        namespace="vae",
    )


def binning_reporting() -> Pipeline:
    return pipeline(
        [
            node(
                nodes.binning_metrics,
                ["binning_embedding", "params:binning", "params:seed"],
                "binning_metrics",
                name="binning_metrics",
            ),
            node(
                nodes.umap_figure,
                ["binning_embedding", "params:binning", "binning_metrics"],
                "binning_umap_figure",
                name="binning_umap_figure",
            ),
            node(
                nodes.training_figure,
                "binning_training",
                "binning_training_figure",
                name="binning_training_figure",
            ),
        ],
        namespace="vae",
    )


def create_pipeline(**kwargs) -> Pipeline:
    return cells_reporting() + binning_reporting()
