"""Perturbation baselines that scGen is compared with, and scGen's balanced pools.

- vector arithmetic in gene space: control cells + (mean stimulated − mean control);
- the same arithmetic in PCA space, mapped back to genes;
- the mean response: control cells + the mean over the other cell types of each type's own
  (mean stimulated − mean control), every type weighted equally;
- the null prediction: the control cells themselves.

The two arithmetic baselines take their means from the same balanced training pools as
scGen's latent ``delta``: a stimulated pool of the other types against a control pool that
also holds the held-out type's control cells (each type resampled to the largest one). The
mean response instead pairs each training type's stimulated mean with its *own* control
mean, from exact means (no resampling), which is the "mean response"/"perturbed mean"
baseline of recent benchmarks (Ahlmann-Eltze et al. 2025, Nat Methods; Csendes et al.
2025; Wu et al. 2024, PerturBench).
"""

from __future__ import annotations

from typing import Any

import anndata as ad
import numpy as np

from omicsgen.models.data import (
    PCA_FIT_VALUES,
    CellRows,
    dense_matrix,
    dense_sample,
    expression_matrix,
    group_row_means,
    multiplicities,
    weighted_row_mean,
)
from omicsgen.preprocessing.expression import balance_by_cell_type
from omicsgen.preprocessing.validate import InputValidationError, source_of


def balanced_condition_pools(  # noqa: PLR0913
    adata: ad.AnnData,
    condition_key: str = "condition",
    control: str = "control",
    stimulated: str = "stimulated",
    cell_type_key: str = "cell_type",
    seed: int = 0,
) -> tuple[ad.AnnData, ad.AnnData]:
    """scGen's pools for ``delta``: control and stimulated cells, each balanced by cell type
    (resampled with replacement to its largest type), then both subsampled without
    replacement to the smaller pool's size."""
    condition = adata.obs[condition_key].astype(str).to_numpy()
    pools = []
    for offset, name in enumerate((control, stimulated)):
        pool = adata[condition == name]
        if pool.n_obs == 0:
            raise InputValidationError(
                f"{source_of(adata)}: no training cells with {condition_key}='{name}'"
            )
        pools.append(balance_by_cell_type(pool, cell_type_key, seed=seed + offset))
    size = min(p.n_obs for p in pools)
    rng = np.random.default_rng(seed)
    return tuple(p[np.sort(rng.choice(p.n_obs, size, replace=False))] for p in pools)


def pool_rows(adata: ad.AnnData, *pools: ad.AnnData) -> list[np.ndarray]:
    """Row positions in ``adata`` (with repeats) of each pool drawn from it by
    :func:`balanced_condition_pools` (resampled cells keep ``obs["original_cell"]``)."""
    return [adata.obs_names.get_indexer(pool.obs["original_cell"].astype(str)) for pool in pools]


def _prediction(control_cells: ad.AnnData, values: np.ndarray, method: str) -> ad.AnnData:
    predicted = ad.AnnData(
        X=np.asarray(values, dtype=np.float32), obs=control_cells.obs.copy(), var=control_cells.var.copy()
    )
    predicted.obs["method"] = method
    return predicted


def _shifted(control_cells: ad.AnnData, delta: np.ndarray, method: str) -> ad.AnnData:
    return _prediction(control_cells, dense_matrix(control_cells) + delta.astype(np.float32), method)


def _pca_shifted(pca, control_cells: ad.AnnData, delta: np.ndarray) -> ad.AnnData:
    """``delta`` (genes) mapped into ``pca``'s space (PCA is affine: the mean of the projected
    pools is the projection of their means), added to the projected control cells, mapped back."""
    shifted = pca.transform(dense_matrix(control_cells)) + pca.components_ @ delta
    return _prediction(control_cells, pca.inverse_transform(shifted), "pca_arithmetic")


def _fitted_pca(cells: np.ndarray, n_components: int, seed: int):
    from sklearn.decomposition import PCA

    # copy=False: centred in place (every caller passes an array of its own)
    return PCA(n_components=min(n_components, len(cells) - 1, cells.shape[1]), random_state=seed, copy=False).fit(cells)


def gene_space_arithmetic(
    control_pool: ad.AnnData, stimulated_pool: ad.AnnData, control_cells: ad.AnnData
) -> ad.AnnData:
    delta = dense_matrix(stimulated_pool).mean(axis=0, dtype=np.float64) - dense_matrix(control_pool).mean(axis=0, dtype=np.float64)
    return _shifted(control_cells, delta, "gene_arithmetic")


def pca_space_arithmetic(  # noqa: PLR0913
    train: ad.AnnData,
    control_pool: ad.AnnData,
    stimulated_pool: ad.AnnData,
    control_cells: ad.AnnData,
    n_components: int = 100,
    seed: int = 0,
) -> ad.AnnData:
    delta = dense_matrix(stimulated_pool).mean(axis=0, dtype=np.float64) - dense_matrix(control_pool).mean(axis=0, dtype=np.float64)
    return _pca_shifted(_fitted_pca(dense_matrix(train).copy(), n_components, seed), control_cells, delta)


def _type_shifts(means: dict[str, np.ndarray], types: list[str], control: str, stimulated: str) -> list[np.ndarray]:
    return [
        means[f"{t}\t{stimulated}"] - means[f"{t}\t{control}"]
        for t in types if f"{t}\t{stimulated}" in means and f"{t}\t{control}" in means
    ]  # fmt: skip


def mean_response(  # noqa: PLR0913
    train: ad.AnnData,
    control_cells: ad.AnnData,
    condition_key: str = "condition",
    control: str = "control",
    stimulated: str = "stimulated",
    cell_type_key: str = "cell_type",
) -> ad.AnnData:
    """``control_cells`` + the mean over the cell types of ``train`` other than theirs of
    (mean stimulated − mean control) within each type; types with only one condition in
    ``train`` are left out, each remaining type counts once whatever its size."""
    keys = {"condition_key": condition_key, "control": control, "stimulated": stimulated, "cell_type_key": cell_type_key}
    return _mean_response(dense_matrix(train), train, control_cells, keys)


def _mean_response(source, train: ad.AnnData, control_cells: ad.AnnData, keys: dict[str, str]) -> ad.AnnData:
    held_out = set(control_cells.obs[keys["cell_type_key"]].astype(str))
    types = train.obs[keys["cell_type_key"]].astype(str).to_numpy()
    groups = np.char.add(np.char.add(types.astype(str), "\t"), train.obs[keys["condition_key"]].astype(str).to_numpy().astype(str))
    shifts = _type_shifts(group_row_means(source, groups), sorted(set(types) - held_out), keys["control"], keys["stimulated"])
    if not shifts:
        raise InputValidationError(
            f"{source_of(train)}: no cell type other than {sorted(held_out)} has both "
            f"{keys['condition_key']}='{keys['control']}' and '{keys['stimulated']}' training cells"
        )
    return _shifted(control_cells, np.mean(shifts, axis=0), "mean_response")


def predict_from_training_cells(  # noqa: PLR0913
    train: ad.AnnData,
    control_cells: ad.AnnData,
    keys: dict[str, str],
    n_components: int = 100,
    seed: int = 0,
    rows: np.ndarray | None = None,
) -> tuple[list[ad.AnnData], dict[str, Any]]:
    """Every baseline for ``control_cells`` from ``train`` (in memory or a backed file, read
    blockwise): gene- and PCA-space arithmetic over scGen's balanced pools (as pool means),
    the mean response, the null prediction. Also returns how the PCA was fitted (on a seeded
    subsample above :data:`~omicsgen.models.data.PCA_FIT_VALUES` values). ``rows``: a mask of
    the cells of ``train`` to use (default: all; a backed file is not indexed twice)."""
    rows = np.ones(train.n_obs, dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    source = expression_matrix(train)
    source = source.subset(rows) if isinstance(source, CellRows) else source[rows]
    cells_only = ad.AnnData(obs=train.obs.loc[rows, [keys["condition_key"], keys["cell_type_key"]]].copy())
    control_pool, stimulated_pool = balanced_condition_pools(cells_only, **keys, seed=seed)
    control_rows, stimulated_rows = pool_rows(cells_only, control_pool, stimulated_pool)
    delta = weighted_row_mean(source, multiplicities(stimulated_rows, len(source))) - weighted_row_mean(
        source, multiplicities(control_rows, len(source))
    )
    fit_cells, sampled = dense_sample(source, seed=seed)
    pca = _fitted_pca(fit_cells, n_components, seed)
    del fit_cells
    predictions = [
        _shifted(control_cells, delta, "gene_arithmetic"),
        _pca_shifted(pca, control_cells, delta),
        _mean_response(source, cells_only, control_cells, keys),
        null_prediction(control_cells),
    ]
    fit = {"pca_fit_cells": int(pca.n_samples_), "pca_fit_subsampled": sampled, "pca_fit_limit_values": PCA_FIT_VALUES}
    return predictions, fit


def null_prediction(control_cells: ad.AnnData) -> ad.AnnData:
    return _prediction(control_cells, dense_matrix(control_cells), "null")
