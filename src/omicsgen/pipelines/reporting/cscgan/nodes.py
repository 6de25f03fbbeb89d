"""cscgan reporting nodes: metrics and figures of real vs generated cells."""

from __future__ import annotations

import logging
from typing import Any

import anndata as ad
import numpy as np

from omicsgen.metrics.degenerate import degenerate_settings
from omicsgen.pipelines.modelling.cscgan.nodes import is_conditional, training_settings

logger = logging.getLogger(__name__)


def _dense(adata: ad.AnnData) -> np.ndarray:
    return adata.X.toarray() if hasattr(adata.X, "toarray") else np.asarray(adata.X)


def evaluate_generated_cells(cells: ad.AnnData, generated: ad.AnnData, params: dict[str, Any]) -> dict[str, Any]:
    """Real-vs-generated metrics beside the real-vs-real control, overall and per cell type."""
    from omicsgen.metrics.generation import evaluate_generation, summary_table
    from omicsgen.preprocessing.cscgan import PREPROCESSING_KEY

    key = params["input"]["cell_type_key"]
    result = evaluate_generation(
        _dense(cells),
        cells.obs[key].astype(str).to_numpy(),
        _dense(generated),
        generated.obs["cell_type"].astype(str).to_numpy(),
        seed=training_settings(params).seed,
        **params["evaluation"],
    )
    # types too small to condition on (preprocessing.min_cells_per_type), warned about there
    result["excluded_cell_types"] = list(cells.uns[PREPROCESSING_KEY]["excluded_cell_types"])
    result["n_genes"] = int(cells.n_vars)
    for row in summary_table(result):
        logger.info(
            "%-12s %-18s AUC %.3f  MMD %.4f  mean r %.3f  coverage %.3f",
            row["cell_type"], row["comparison"], row["classifier_auc"], row["mmd"],
            row["mean_correlation"], row["coverage"],
        )
    return result


def collect_metrics(
    generation: dict[str, Any], augmentation: dict[str, Any], training: dict[str, Any],
    augmentation_training: dict[str, Any], params: dict[str, Any],
) -> dict[str, Any]:
    """metrics.json: realism, augmentation and what the training runs cost."""
    def cost(record: dict[str, Any]) -> dict[str, Any]:
        return {
            "generator_steps": record["config"].get("generator_steps"),
            "seconds": record["seconds"],
            "device": record["device"],
            "peak_memory_mb": record["peak_memory_mb"],
        }

    warnings = degenerate_settings(generation["n_genes"], {
        "cscgan.evaluation.n_components": (params["evaluation"]["n_components"], "the classifier's PCA is the whole space"),
    })  # fmt: skip
    return {
        "warnings": warnings,
        "model": "cscGAN" if is_conditional(params) else "scGAN",
        "generation": generation,
        "augmentation": augmentation,
        "training": {"main": cost(training), "augmentation": cost(augmentation_training)},
    }


def umap_figure(cells: ad.AnnData, generated: ad.AnnData, params: dict[str, Any]):
    """UMAP of real and generated cells together (log1p → PCA → UMAP), each side at most
    ``figures.umap_max_cells`` cells (a seeded subsample by cell type)."""
    import umap

    from omicsgen.metrics.generation import ReferenceSpace
    from omicsgen.metrics.sampling import stratified_subsample
    from omicsgen.plots.cscgan import umap_overlay

    seed = training_settings(params).seed
    limit = params["figures"].get("umap_max_cells")
    real_labels = cells.obs[params["input"]["cell_type_key"]].astype(str).to_numpy()
    generated_labels = generated.obs["cell_type"].astype(str).to_numpy()
    real_rows = stratified_subsample(real_labels, limit, seed)
    generated_rows = stratified_subsample(generated_labels, limit, seed)
    both = np.vstack([_dense(cells[real_rows]), _dense(generated[generated_rows])])
    pcs = ReferenceSpace.fit(both, seed=seed).transform(both)
    embedding = umap.UMAP(n_neighbors=15, random_state=seed).fit_transform(pcs)
    labels = np.r_[real_labels[real_rows], generated_labels[generated_rows]]
    flags = np.r_[np.zeros(len(real_rows), bool), np.ones(len(generated_rows), bool)]
    return umap_overlay(embedding, labels, flags)


def marker_violin_figure(cells: ad.AnnData, generated: ad.AnnData, params: dict[str, Any]):
    """Violins of marker genes per cell type, real vs generated (missing genes are logged)."""
    from omicsgen.plots.cscgan import marker_violins

    key = params["input"]["cell_type_key"]
    wanted = list(params["figures"]["marker_genes"])
    genes = [g for g in wanted if g in cells.var_names and g in generated.var_names]
    if len(genes) < len(wanted):
        logger.warning("marker genes not in the model's genes, not plotted: %s", sorted(set(wanted) - set(genes)))
    if not genes:  # another organism or panel: show the most variable genes instead
        variance = np.log1p(_dense(cells)).var(axis=0)
        genes = [str(cells.var_names[i]) for i in np.argsort(-variance)[: max(len(wanted), 8)]]
    types = sorted(set(generated.obs["cell_type"].astype(str)) & set(cells.obs[key].astype(str)))

    def by_type(adata: ad.AnnData, column: str) -> dict[str, dict[str, np.ndarray]]:
        labels = adata.obs[column].astype(str).to_numpy()
        matrix = adata[:, genes].X
        matrix = matrix.toarray() if hasattr(matrix, "toarray") else np.asarray(matrix)
        return {g: {t: matrix[labels == t, j] for t in types} for j, g in enumerate(genes)}

    return marker_violins(by_type(cells, key), by_type(generated, "cell_type"), genes, types)


def training_curves_figure(training: dict[str, Any]):
    from omicsgen.plots.training import training_curves

    return training_curves(
        {"cscGAN": training["history"]}, ["critic_loss", "generator_loss", "wasserstein"],
        steps_per_epoch=training["config"]["generator_steps_per_epoch"], x_label="generator steps",
    )
