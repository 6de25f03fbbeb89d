"""AIF reporting nodes: scIB metrics of every method, UMAPs, metrics table."""

from __future__ import annotations

from typing import Any

import anndata as ad
import numpy as np
import pandas as pd


def integration_metrics(
    embeddings: dict[str, np.ndarray], corrected: ad.AnnData, params: dict[str, Any]
) -> tuple[dict[str, dict[str, float]], pd.DataFrame]:
    """scib-metrics on every embedding (PCR against the uncorrected PCA): JSON + table."""
    from omicsgen.metrics.integration import scib_scores, scores_to_json

    metrics = params["metrics"]
    scores = scib_scores(
        corrected.obs, embeddings, params["batch_key"], params["cell_type_key"], embeddings["uncorrected"],
        leiden=bool(metrics["leiden"]), neighbors=metrics["neighbors"], skip=metrics["skip"],
    )  # fmt: skip
    table = scores.reset_index()
    return scores_to_json(scores), table


def umap_figure(embeddings: dict[str, np.ndarray], corrected: ad.AnnData, params: dict[str, Any]):
    from omicsgen.pipelines.modelling.aif.nodes import training_config
    from omicsgen.plots.aif import layout_coordinates, umap_grid

    layout, seed = params["umap"], training_config(params).seed
    coordinates = {
        name: layout_coordinates(e, seed, int(layout["n_neighbors"]), layout["layout"]) for name, e in embeddings.items()
    }
    return umap_grid(coordinates, corrected.obs, params["batch_key"], params["cell_type_key"])


def metrics_table_figure(table: pd.DataFrame):
    from omicsgen.plots.aif import metrics_table

    return metrics_table(table.set_index("method"))
