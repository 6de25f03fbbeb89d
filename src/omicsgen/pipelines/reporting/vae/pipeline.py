"""VAE reporting: ``metrics.json`` and figures for the cells, ``binning_*`` for the reads."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from omicsgen.pipelines.reporting.vae import nodes


def reporting_template(prefix: str, section: str, metrics_function) -> Pipeline:
    """``<prefix>embedding`` + ``<prefix>training`` → ``<prefix>metrics`` and three figures."""
    return pipeline(
        [
            node(
                metrics_function,
                [f"{prefix}embedding", f"params:{section}", "params:seed"],
                f"{prefix}metrics",
                name=f"{prefix}metrics",
            ),
            node(
                nodes.umap_figure,
                [f"{prefix}embedding", f"params:{section}", f"{prefix}metrics"],
                f"{prefix}umap_figure",
                name=f"{prefix}umap_figure",
            ),
            node(
                nodes.training_figure,
                f"{prefix}training",
                f"{prefix}training_figure",
                name=f"{prefix}training_figure",
            ),
        ],
        namespace="vae",
    )


def cells_reporting() -> Pipeline:
    return reporting_template("", "cells", nodes.clustering_metrics)


def binning_reporting() -> Pipeline:
    return reporting_template("binning_", "binning", nodes.binning_metrics)


def create_pipeline(**kwargs) -> Pipeline:
    return cells_reporting() + binning_reporting()
