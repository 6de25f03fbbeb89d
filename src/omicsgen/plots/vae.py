"""Figures of the VAE method: UMAP panels and training curves (matplotlib, Agg backend)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import anndata as ad  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def _scatter(ax, points: np.ndarray, labels: pd.Series, title: str, legend: bool) -> None:
    labels = labels.astype(str)
    categories = sorted(labels.unique(), key=lambda c: (c == "noise", len(c), c))
    cmap = plt.get_cmap("tab20" if len(categories) > 10 else "tab10")
    for i, category in enumerate(categories):
        mask = (labels == category).to_numpy()
        colour = "lightgrey" if category == "noise" else cmap(i % cmap.N)
        ax.scatter(points[mask, 0], points[mask, 1], s=3, color=colour, label=category, rasterized=True)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    if legend and len(categories) <= 20:
        ax.legend(markerscale=3, fontsize=6, loc="best", frameon=False)


def umap_panels(
    adata: ad.AnnData,
    embeddings: Sequence[str],
    colour_by: Sequence[str],
    scores: Mapping[str, Mapping[str, Any]] | None = None,
) -> plt.Figure:
    """One row per embedding (``obsm["X_umap_<name>"]``), one column per obs column.

    A column named ``"{name}"`` inside ``colour_by`` (e.g. ``"{name}_leiden"``) is filled
    in per row, so VAE and PCA clusters sit side by side. ``scores[name][column]`` (an
    ARI) is added to the panel titles when given.
    """
    fig, axes = plt.subplots(
        len(embeddings), len(colour_by), figsize=(3.6 * len(colour_by), 3.4 * len(embeddings)), squeeze=False
    )
    for row, name in enumerate(embeddings):
        points = np.asarray(adata.obsm[f"X_umap_{name}"])
        for col, template in enumerate(colour_by):
            column = template.format(name=name)
            title = f"{name.upper()} UMAP — {column}"
            ari = (scores or {}).get(name, {}).get(column)
            if ari is not None:
                title += f" (ARI {ari:.3f})"
            _scatter(axes[row, col], points, adata.obs[column], title, legend=col == 0)
    fig.tight_layout()
    return fig
