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

    metrics = params.get("metrics", {})
    scores = scib_scores(
        corrected.obs, embeddings, params["batch_key"], params["cell_type_key"], embeddings["uncorrected"],
        leiden=bool(metrics.get("leiden", False)), neighbors=metrics.get("neighbors", "pynndescent"),
        skip=metrics.get("skip", []),
    )  # fmt: skip
    table = scores.reset_index()
    return scores_to_json(scores), table


def umap_figure(embeddings: dict[str, np.ndarray], corrected: ad.AnnData, params: dict[str, Any]):
    from omicsgen.plots.aif import layout_coordinates, umap_grid

    layout = params.get("umap", {})
    n_neighbors, method = int(layout.get("n_neighbors", 15)), layout.get("layout", "umap")
    coordinates = {
        name: layout_coordinates(e, params["seed"], n_neighbors, method) for name, e in embeddings.items()
    }
    return umap_grid(coordinates, corrected.obs, params["batch_key"], params["cell_type_key"])


def metrics_table_figure(table: pd.DataFrame):
    from omicsgen.plots.aif import metrics_table

    return metrics_table(table.set_index("method"))
