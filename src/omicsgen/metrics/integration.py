"""Batch-integration baselines and scIB metrics (scib-metrics' Benchmarker).

Baselines are a mapping name → function ``(adata, batch_key, cell_type_key, n_pcs, seed)
→ embedding`` so that another method is one line in :data:`BASELINES`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import anndata as ad
import numpy as np
import pandas as pd

from omicsgen.preprocessing.validate import InputValidationError, preview, source_of

Embedding = Callable[..., np.ndarray]


def _pca(matrix: np.ndarray, n_pcs: int, seed: int) -> np.ndarray:
    import scanpy as sc

    n_pcs = min(n_pcs, min(matrix.shape) - 1)
    return sc.pp.pca(np.asarray(matrix, dtype=np.float32), n_comps=n_pcs, random_state=seed, svd_solver="arpack")


def _dense(adata: ad.AnnData, layer: str | None = None) -> np.ndarray:
    from omicsgen.models.data import dense_matrix  # numpy only; kept lazy with the other imports

    return dense_matrix(adata, layer)


def uncorrected_pca(adata: ad.AnnData, batch_key: str, cell_type_key: str | None, n_pcs: int = 50, seed: int = 0) -> np.ndarray:
    """PCA of the log-normalised X, no correction."""
    return _pca(_dense(adata), n_pcs, seed)


def combat_pca(adata: ad.AnnData, batch_key: str, cell_type_key: str | None, n_pcs: int = 50, seed: int = 0) -> np.ndarray:
    """ComBat (scanpy) on X, then PCA."""
    import scanpy as sc

    work = ad.AnnData(_dense(adata), obs=adata.obs[[batch_key]].copy())
    corrected = sc.pp.combat(work, key=batch_key, inplace=False)
    return _pca(corrected, n_pcs, seed)


def harmony_pca(adata: ad.AnnData, batch_key: str, cell_type_key: str | None, n_pcs: int = 50, seed: int = 0) -> np.ndarray:
    """Harmony (harmonypy) on the uncorrected PCA."""
    import harmonypy

    pcs = uncorrected_pca(adata, batch_key, cell_type_key, n_pcs, seed)
    result = harmonypy.run_harmony(pcs, adata.obs[[batch_key]].copy(), [batch_key], random_state=seed, verbose=False)
    corrected = np.asarray(result.Z_corr)
    # harmonypy returns PCs × cells in some releases, cells × PCs in others.
    return corrected.T if corrected.shape[0] != adata.n_obs else corrected


def scgen_pca(
    adata: ad.AnnData, batch_key: str, cell_type_key: str | None, n_pcs: int = 50, seed: int = 0, **train_kwargs
) -> np.ndarray:
    """scGen's batch removal (``omicsgen.models.scgen``; needs cell types), then PCA of its
    corrected expression, like the classical methods. ``train_kwargs`` (e.g. ``max_epochs``)
    go to :func:`omicsgen.models.scgen.remove_batch_effect`."""
    from omicsgen.models.scgen import remove_batch_effect

    if cell_type_key is None:
        raise ValueError("the scgen baseline needs cell_type_key (scGen corrects per cell type)")
    corrected = remove_batch_effect(adata, batch_key, cell_type_key, seed=seed, **train_kwargs)
    return _pca(_dense(corrected), n_pcs, seed)


#: name → baseline ``(adata, batch_key, cell_type_key, n_pcs, seed, **options) → embedding``.
BASELINES: dict[str, Embedding] = {
    "uncorrected": uncorrected_pca,
    "combat": combat_pca,
    "harmony": harmony_pca,
    "scgen": scgen_pca,
}


def baseline_embeddings(
    adata: ad.AnnData,
    batch_key: str,
    cell_type_key: str | None,
    names: Sequence[str],
    n_pcs: int = 50,
    seed: int = 0,
    options: Mapping[str, Mapping] | None = None,
) -> dict[str, np.ndarray]:
    """Run the named baselines on the same preprocessed data (``options``: name → keyword
    arguments of that baseline, e.g. ``{"scgen": {"max_epochs": 30}}``)."""
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; available: {sorted(BASELINES)}")
    options = options or {}
    return {
        name: BASELINES[name](adata, batch_key, cell_type_key, n_pcs=n_pcs, seed=seed, **options.get(name, {}))
        for name in names
    }


def exact_neighbors(matrix: np.ndarray, k: int):
    """Exact k nearest neighbours (scikit-learn) in scib-metrics' ``NeighborsResults``."""
    from scib_metrics.nearest_neighbors import NeighborsResults
    from sklearn.neighbors import NearestNeighbors

    distances, indices = NearestNeighbors(n_neighbors=k).fit(matrix).kneighbors(matrix)
    return NeighborsResults(indices=indices, distances=distances)


#: ``neighbors`` parameter → Benchmarker neighbour computer (None: its pynndescent default).
NEIGHBORS = {"pynndescent": None, "exact": exact_neighbors}


def scib_scores(
    obs: pd.DataFrame,
    embeddings: Mapping[str, np.ndarray],
    batch_key: str,
    cell_type_key: str,
    pre_integrated: np.ndarray,
    leiden: bool = False,
    neighbors: str = "pynndescent",
    skip: Sequence[str] = (),
) -> pd.DataFrame:
    """scIB metrics of every embedding, unscaled, with the 0.4·batch + 0.6·bio total.

    Returns one row per embedding; columns are the individual metrics plus
    ``Batch correction``, ``Bio conservation`` and ``Total``. The metric definitions are
    scib-metrics' own (Benchmarker defaults; ``leiden`` adds NMI/ARI of Leiden clusters).
    ``neighbors``: ``pynndescent`` (Benchmarker's default, approximate) or ``exact``
    (scikit-learn; no numba compilation, which costs ~45 s per process — quicker on small
    data). ``skip``: Benchmarker metric names to switch off (e.g. ``kbet_per_label``, the
    slowest); the batch/bio aggregates are then the means of the metrics that remain.
    """
    from scib_metrics.benchmark import BatchCorrection, Benchmarker, BioConservation

    if cell_type_key not in obs.columns:
        raise InputValidationError(
            f"{source_of(obs)}: cell type column '{cell_type_key}' (needed for the biology metrics) "
            f"missing; obs has {preview(obs.columns, limit=20)}"
        )
    frame = obs[[batch_key, cell_type_key]].astype(str).copy()
    adata = ad.AnnData(np.zeros((len(frame), 1), dtype=np.float32), obs=frame)
    adata.obsm["X_pre"] = np.asarray(pre_integrated, dtype=np.float32)
    keys = []
    for name, embedding in embeddings.items():
        key = f"X_{name}"
        adata.obsm[key] = np.asarray(embedding, dtype=np.float32)
        keys.append(key)
    bio = {"nmi_ari_cluster_labels_leiden": leiden}
    batch: dict[str, bool] = {}
    for name in skip:
        if name in BatchCorrection.__dataclass_fields__:
            batch[name] = False
        elif name in BioConservation.__dataclass_fields__:
            bio[name] = False
        else:
            known = sorted({*BatchCorrection.__dataclass_fields__, *BioConservation.__dataclass_fields__})
            raise ValueError(f"scib metrics: cannot skip unknown metric {name!r}; known: {known}")
    if neighbors not in NEIGHBORS:
        raise ValueError(f"scib metrics: neighbors must be one of {sorted(NEIGHBORS)}, got {neighbors!r}")
    bench = Benchmarker(
        adata,
        batch_key=batch_key,
        label_key=cell_type_key,
        embedding_obsm_keys=keys,
        pre_integrated_embedding_obsm_key="X_pre",
        bio_conservation_metrics=BioConservation(**bio),
        batch_correction_metrics=BatchCorrection(**batch),
        n_jobs=1,
        progress_bar=False,
    )
    bench.prepare(neighbor_computer=NEIGHBORS[neighbors])
    bench.benchmark()
    results = bench.get_results(min_max_scale=False)
    results = results.drop(index="Metric Type").astype(float)
    results.index = [str(i).removeprefix("X_") for i in results.index]
    results.index.name = "method"
    return results


def scores_to_json(scores: pd.DataFrame) -> dict[str, dict[str, float]]:
    """``{method: {metric: value}}`` for ``metrics.json``."""
    return {
        method: {str(k): float(v) for k, v in row.items() if np.isfinite(v)} for method, row in scores.iterrows()
    }
