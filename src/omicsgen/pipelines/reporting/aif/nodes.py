"""AIF reporting nodes: scIB metrics of every method, UMAPs, metrics table."""

from __future__ import annotations

from typing import Any

import anndata as ad
import numpy as np
import pandas as pd


def integration_metrics(
    embeddings: dict[str, np.ndarray], corrected: ad.AnnData, params: dict[str, Any]
) -> tuple[dict[str, Any], pd.DataFrame]:
    """scib-metrics on every embedding (PCR against the uncorrected PCA): JSON + table.

    Above ``metrics.max_cells`` cells every embedding is scored on the same seeded
    subsample, stratified by batch × cell type (kNN graphs, silhouettes and k-means grow
    faster than the cells); ``metrics.json`` then says so under ``scored_on_subsample``.
    """
    from omicsgen.metrics.integration import scib_scores, scores_to_json
    from omicsgen.metrics.sampling import stratified_subsample, subsample_note
    from omicsgen.pipelines.modelling.aif.nodes import training_config

    metrics = params["metrics"]
    obs = corrected.obs
    strata = obs[params["batch_key"]].astype(str)
    if params["cell_type_key"] in obs:
        strata = strata + "/" + obs[params["cell_type_key"]].astype(str)
    max_cells = metrics.get("max_cells")
    kept = stratified_subsample(strata.to_numpy(), max_cells, training_config(params).seed)
    scored = {name: np.asarray(embedding)[kept] for name, embedding in embeddings.items()}
    scores = scib_scores(
        obs.iloc[kept], scored, params["batch_key"], params["cell_type_key"], scored["uncorrected"],
        leiden=bool(metrics["leiden"]), neighbors=metrics["neighbors"], skip=metrics["skip"],
    )  # fmt: skip
    table = scores.reset_index()
    result: dict[str, Any] = scores_to_json(scores)
    if note := subsample_note(len(obs), kept, max_cells, "aif.metrics.max_cells"):
        result["scored_on_subsample"] = note
    return result, table


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
