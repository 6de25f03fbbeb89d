"""scIB integration metrics (scib-metrics' Benchmarker) and the PCA they are computed on.

Scores only: the embeddings to score (AIF's and the baselines', which train or fit a
correction) are made in ``omicsgen.models``.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping, Sequence

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from omicsgen.preprocessing.validate import InputValidationError, preview, source_of


def pca_embedding(matrix, n_pcs: int = 50, seed: int = 0) -> np.ndarray:
    """PCA (scanpy, ARPACK) of a cells × features matrix (dense or sparse), at most
    ``min(shape) - 1`` components: the uncorrected embedding and the one of a corrected
    expression matrix."""
    import scanpy as sc

    dense = matrix.toarray() if sp.issparse(matrix) else matrix
    n_pcs = min(n_pcs, min(dense.shape) - 1)
    return sc.pp.pca(np.asarray(dense, dtype=np.float32), n_comps=n_pcs, random_state=seed, svd_solver="arpack")


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
    # The Benchmarker runs a full garbage collection after every metric of every embedding
    # (50 for five embeddings), each scanning every object of the process: 0.4 s apiece with
    # torch, scanpy and jax loaded, half of the whole scoring at 10,000 cells. Frozen, the
    # objects that existed before stay out of those scans (they go back to the collector
    # after), so each collection only looks at what the metrics made.
    gc.freeze()
    try:
        bench.benchmark()
    finally:
        gc.unfreeze()
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
