"""Embeddings and clusters on AnnData: PCA baseline, kNN graph, UMAP, Leiden, HDBSCAN.

Not a model and not a score: the analysis steps between an embedding (a VAE's latent, a
PCA) and the clustering metrics (:mod:`omicsgen.metrics.clustering`). numpy, scanpy and
scikit-learn only — no torch, nothing of ``omicsgen.models`` or ``omicsgen.pipelines``.

Every function returns a new AnnData (its input untouched) with results under keys named
after the embedding: for ``name="vae"`` the latent is read from ``obsm["X_vae"]`` and the
results go to ``obsm["X_umap_vae"]``, ``obs["vae_leiden"]``, ``obs["vae_hdbscan"]`` and
``uns["neighbors_vae"]``/``obsp["vae_connectivities"]``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
from sklearn.cluster import HDBSCAN
from sklearn.decomposition import PCA

logger = logging.getLogger(__name__)

#: label of samples HDBSCAN leaves unclustered (its ``-1``)
NOISE = "noise"


def pca_embedding(matrix: np.ndarray, n_components: int = 50, seed: int = 0) -> np.ndarray:
    """Principal components of a samples × features matrix (centred, not scaled)."""
    n_components = min(n_components, matrix.shape[0] - 1, matrix.shape[1])
    return PCA(n_components=n_components, random_state=seed).fit_transform(matrix).astype(np.float32)


#: up to this many samples the kNN graph is exact (scikit-learn); above, pynndescent's
#: approximate one. scanpy itself switches at 8,192 samples, but on an embedding of a few
#: dozen dimensions exact neighbours of 50,000 samples take seconds, while pynndescent
#: first spends ~15 s compiling in every new process.
EXACT_NEIGHBORS_MAX = 50_000
SCANPY_EXACT_BELOW = 8_192


def _with_graph(adata: ad.AnnData, name: str, n_neighbors: int, seed: int) -> ad.AnnData:
    out = adata.copy()
    sc.pp.neighbors(
        out,
        n_neighbors=min(n_neighbors, out.n_obs - 1),
        use_rep=f"X_{name}",
        random_state=seed,
        key_added=f"neighbors_{name}",
        # None below scanpy's own switch keeps its dense-distance path there
        transformer="sklearn" if SCANPY_EXACT_BELOW <= out.n_obs <= EXACT_NEIGHBORS_MAX else None,
    )
    return out


def umap_layout(adata: ad.AnnData, name: str, min_dist: float = 0.5, seed: int = 0) -> None:
    """UMAP of the ``name`` kNN graph into ``obsm["X_umap_<name>"]`` (in place, private copy)."""
    previous = adata.obsm.get("X_umap")
    sc.tl.umap(adata, min_dist=min_dist, random_state=seed, neighbors_key=f"neighbors_{name}")
    adata.obsm[f"X_umap_{name}"] = adata.obsm.pop("X_umap")
    if previous is not None:
        adata.obsm["X_umap"] = previous


def leiden_clusters(
    adata: ad.AnnData,
    name: str,
    resolution: float | list[float] = 1.0,
    seed: int = 0,
    labels: pd.Series | None = None,
) -> dict[str, float]:
    """Leiden communities of the ``name`` kNN graph into ``obs["<name>_leiden"]``.

    A list of resolutions with known ``labels`` keeps the one whose clusters have the
    highest NMI with the labels (scIB's optimal-resolution clustering; every embedding
    gets the same grid, so the comparison stays fair). Returns ``{resolution: NMI}`` and
    ``"selected"`` (empty for a single resolution).
    """
    from sklearn.metrics import normalized_mutual_info_score

    key = f"{name}_leiden"
    grid = [float(r) for r in resolution] if isinstance(resolution, list | tuple) else [float(resolution)]
    if len(grid) > 1 and labels is None:
        raise ValueError(f"{name}: a list of Leiden resolutions needs known labels to choose one")
    scores: dict[str, float] = {}
    best: tuple[float, pd.Series] | None = None
    for value in grid:
        sc.tl.leiden(
            adata,
            resolution=value,
            random_state=seed,
            neighbors_key=f"neighbors_{name}",
            key_added=key,
            flavor="igraph",
            n_iterations=2,
            directed=False,
        )
        if len(grid) == 1:
            return {}
        scores[str(value)] = float(normalized_mutual_info_score(labels.astype(str), adata.obs[key].astype(str)))
        if best is None or scores[str(value)] > best[0]:
            best = (scores[str(value)], adata.obs[key].copy(), value)
    adata.obs[key] = best[1]
    adata.uns[f"{key}_resolution"] = {"selected": best[2], "nmi_by_resolution": scores}
    return scores


def hdbscan_labels(
    points: np.ndarray, min_cluster_size: int = 15, min_samples: int | None = None
) -> np.ndarray:
    """scikit-learn HDBSCAN; unclustered samples are labelled :data:`NOISE`."""
    labels = HDBSCAN(
        min_cluster_size=max(2, min(min_cluster_size, len(points))), min_samples=min_samples
    ).fit_predict(points)
    return np.where(labels < 0, NOISE, labels.astype(str)).astype(object)


def cluster_embedding(  # noqa: PLR0913
    adata: ad.AnnData,
    name: str,
    *,
    n_neighbors: int = 15,
    umap: Mapping[str, Any] | None = None,
    leiden: Mapping[str, Any] | None = None,
    hdbscan: Mapping[str, Any] | None = None,
    seed: int = 0,
    labels: pd.Series | None = None,
) -> ad.AnnData:
    """kNN graph, UMAP, Leiden and HDBSCAN of ``obsm["X_<name>"]``.

    Args:
        n_neighbors: Neighbours of the kNN graph (capped at the samples − 1).
        umap: ``{min_dist}`` (:func:`umap_layout`).
        leiden: ``{resolution}``: a number, or a list to choose from with ``labels``
            (see :func:`leiden_clusters`).
        hdbscan: ``{min_cluster_size, min_samples, space}`` where ``space`` is ``latent``
            (cluster the embedding itself, the default) or ``umap`` (its 2-D layout).
        seed: Seeds the graph, UMAP and Leiden.
        labels: Known labels, only to choose among several Leiden resolutions.
    """
    seed = int(seed)
    out = _with_graph(adata, name, int(n_neighbors), seed)
    umap_layout(out, name, seed=seed, **(umap or {}))
    leiden_clusters(out, name, seed=seed, labels=labels, **(leiden or {}))
    hdbscan_params = dict(hdbscan or {})
    space = hdbscan_params.pop("space", "latent")
    if space not in ("latent", "umap"):
        raise ValueError(f"hdbscan space must be 'latent' or 'umap', got {space!r}")
    points = out.obsm[f"X_{name}" if space == "latent" else f"X_umap_{name}"]
    clusters = hdbscan_labels(np.asarray(points), **hdbscan_params)
    out.obs[f"{name}_hdbscan"] = pd.Categorical(clusters)
    logger.info(
        "%s: %d Leiden clusters, %d HDBSCAN clusters (%.0f%% noise)",
        name,
        out.obs[f"{name}_leiden"].nunique(),
        len(set(clusters) - {NOISE}),
        100 * float(np.mean(clusters == NOISE)),
    )
    return out
