"""Batch-integration baselines AIF is compared with: embeddings of the cells after a
classical or learned correction (ComBat, Harmony, scGen's batch removal) or none.

A baseline is a function ``(adata, batch_key, cell_type_key, n_pcs, seed, **options) →
embedding``; another method is one line in :data:`BASELINES`. Scoring them is
:func:`omicsgen.metrics.integration.scib_scores`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import anndata as ad
import numpy as np

from omicsgen.metrics.integration import pca_embedding
from omicsgen.models.data import dense_matrix

Embedding = Callable[..., np.ndarray]


def uncorrected_pca(adata: ad.AnnData, batch_key: str, cell_type_key: str | None, n_pcs: int = 50, seed: int = 0) -> np.ndarray:
    """PCA of the log-normalised X, no correction."""
    return pca_embedding(adata.X, n_pcs, seed)


def combat_pca(adata: ad.AnnData, batch_key: str, cell_type_key: str | None, n_pcs: int = 50, seed: int = 0) -> np.ndarray:
    """ComBat (scanpy) on X, then PCA."""
    import scanpy as sc

    work = ad.AnnData(dense_matrix(adata), obs=adata.obs[[batch_key]].copy())
    return pca_embedding(sc.pp.combat(work, key=batch_key, inplace=False), n_pcs, seed)


def harmony_pca(adata: ad.AnnData, batch_key: str, cell_type_key: str | None, n_pcs: int = 50, seed: int = 0) -> np.ndarray:
    """Harmony (harmonypy) on the uncorrected PCA."""
    import harmonypy

    pcs = uncorrected_pca(adata, batch_key, cell_type_key, n_pcs, seed)
    result = harmonypy.run_harmony(pcs, adata.obs[[batch_key]].copy(), [batch_key], random_state=seed, verbose=False)
    corrected = np.asarray(result.Z_corr)
    # harmonypy returns PCs × cells in some releases, cells × PCs in others.
    return corrected.T if corrected.shape[0] != adata.n_obs else corrected


def scgen_pca(
    adata: ad.AnnData, batch_key: str, cell_type_key: str | None, n_pcs: int = 50, seed: int = 0, **options
) -> np.ndarray:
    """scGen's batch removal (needs cell types), then PCA of its corrected expression, like
    the classical methods. ``options`` (e.g. ``max_epochs``) go to
    :func:`omicsgen.models.scgen.remove_batch_effect`."""
    from omicsgen.models.scgen import remove_batch_effect

    if cell_type_key is None:
        raise ValueError("the scgen baseline needs cell_type_key (scGen corrects per cell type)")
    corrected = remove_batch_effect(adata, batch_key, cell_type_key, seed=seed, **options)
    return pca_embedding(corrected.X, n_pcs, seed)


#: name → baseline ``(adata, batch_key, cell_type_key, n_pcs, seed, **options) → embedding``.
BASELINES: dict[str, Embedding] = {
    "uncorrected": uncorrected_pca,
    "combat": combat_pca,
    "harmony": harmony_pca,
    "scgen": scgen_pca,
}


def check_baselines(names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; available: {sorted(BASELINES)}")


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
    check_baselines(names)
    options = options or {}
    return {
        name: BASELINES[name](adata, batch_key, cell_type_key, n_pcs=n_pcs, seed=seed, **options.get(name, {}))
        for name in names
    }
