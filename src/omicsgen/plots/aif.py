"""Figures of the AIF batch-integration report (matplotlib, Agg)."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def layout_coordinates(
    embedding: np.ndarray, seed: int = 0, n_neighbors: int = 15, method: str = "umap"
) -> np.ndarray:
    """2-D layout of an embedding: UMAP (scanpy's neighbours + UMAP) or its first two PCs.

    ``pca`` exists for quick test runs (UMAP's numba compilation dominates on tiny data).
    """
    import anndata as ad
    import scanpy as sc

    if method == "pca":
        centred = np.asarray(embedding, dtype=np.float64) - np.mean(embedding, axis=0)
        _, _, components = np.linalg.svd(centred, full_matrices=False)
        return centred @ components[:2].T
    if method != "umap":
        raise ValueError(f"layout method must be 'umap' or 'pca', got {method!r}")

    adata = ad.AnnData(np.zeros((len(embedding), 1), dtype=np.float32))
    adata.obsm["X_emb"] = np.asarray(embedding, dtype=np.float32)
    sc.pp.neighbors(adata, n_neighbors=n_neighbors, use_rep="X_emb", random_state=seed)
    sc.tl.umap(adata, random_state=seed)
    return adata.obsm["X_umap"]


def _scatter(ax, coords: np.ndarray, labels: pd.Series, title: str, legend: bool) -> None:
    categories = sorted(labels.astype(str).unique())
    cmap = plt.get_cmap("tab10" if len(categories) <= 10 else "tab20")
    values = labels.astype(str).to_numpy()
    for i, category in enumerate(categories):
        mask = values == category
        ax.scatter(coords[mask, 0], coords[mask, 1], s=3, color=cmap(i % cmap.N), label=category, rasterized=True)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    if legend:
        ax.legend(fontsize=6, markerscale=3, frameon=False, loc="center left", bbox_to_anchor=(1.0, 0.5))


def umap_grid(
    coordinates: Mapping[str, np.ndarray], obs: pd.DataFrame, batch_key: str, cell_type_key: str
) -> plt.Figure:
    """One column per method (uncorrected first), rows coloured by batch and by cell type."""
    methods = list(coordinates)
    fig, axes = plt.subplots(2, len(methods), figsize=(3.0 * len(methods) + 1.5, 6.0), squeeze=False)
    for j, method in enumerate(methods):
        last = j == len(methods) - 1
        _scatter(axes[0, j], coordinates[method], obs[batch_key], f"{method}: {batch_key}", last)
        _scatter(axes[1, j], coordinates[method], obs[cell_type_key], f"{method}: {cell_type_key}", last)
    fig.tight_layout()
    return fig


def metrics_table(scores: pd.DataFrame) -> plt.Figure:
    """scIB-style table: methods sorted by total, one coloured cell per metric."""
    ordered = scores.sort_values("Total", ascending=False)
    values = ordered.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(1.0 * values.shape[1] + 2.0, 0.5 * values.shape[0] + 1.5))
    ax.imshow(np.nan_to_num(values), cmap="PRGn", vmin=0, vmax=1, aspect="auto")
    for (i, j), value in np.ndenumerate(values):
        ax.text(j, i, "—" if np.isnan(value) else f"{value:.2f}", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(values.shape[1]), ordered.columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(values.shape[0]), ordered.index, fontsize=9)
    ax.set_title("scIB metrics (unscaled); total = 0.4·batch + 0.6·bio", fontsize=10)
    fig.tight_layout()
    return fig

