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

import anndata as ad
import numpy as np

from omicsgen.models.data import dense_matrix
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


def _prediction(control_cells: ad.AnnData, values: np.ndarray, method: str) -> ad.AnnData:
    predicted = ad.AnnData(
        X=np.asarray(values, dtype=np.float32), obs=control_cells.obs.copy(), var=control_cells.var.copy()
    )
    predicted.obs["method"] = method
    return predicted


def gene_space_arithmetic(
    control_pool: ad.AnnData, stimulated_pool: ad.AnnData, control_cells: ad.AnnData
) -> ad.AnnData:
    delta = dense_matrix(stimulated_pool).mean(axis=0) - dense_matrix(control_pool).mean(axis=0)
    return _prediction(control_cells, dense_matrix(control_cells) + delta, "gene_arithmetic")


def pca_space_arithmetic(  # noqa: PLR0913
    train: ad.AnnData,
    control_pool: ad.AnnData,
    stimulated_pool: ad.AnnData,
    control_cells: ad.AnnData,
    n_components: int = 100,
    seed: int = 0,
) -> ad.AnnData:
    from sklearn.decomposition import PCA

    n_components = min(n_components, train.n_obs - 1, train.n_vars)
    pca = PCA(n_components=n_components, random_state=seed).fit(dense_matrix(train))
    delta = pca.transform(dense_matrix(stimulated_pool)).mean(axis=0) - pca.transform(
        dense_matrix(control_pool)
    ).mean(axis=0)
    shifted = pca.transform(dense_matrix(control_cells)) + delta
    return _prediction(control_cells, pca.inverse_transform(shifted), "pca_arithmetic")


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
    held_out = set(control_cells.obs[cell_type_key].astype(str))
    types = train.obs[cell_type_key].astype(str).to_numpy()
    conditions = train.obs[condition_key].astype(str).to_numpy()
    x = dense_matrix(train).astype(np.float64)
    shifts = []
    for cell_type in sorted(set(types) - held_out):
        in_type = types == cell_type
        treated, untreated = in_type & (conditions == stimulated), in_type & (conditions == control)
        if treated.any() and untreated.any():
            shifts.append(x[treated].mean(axis=0) - x[untreated].mean(axis=0))
    if not shifts:
        raise InputValidationError(
            f"{source_of(train)}: no cell type other than {sorted(held_out)} has both "
            f"{condition_key}='{control}' and '{stimulated}' training cells"
        )
    delta = np.mean(shifts, axis=0)
    return _prediction(control_cells, dense_matrix(control_cells) + delta, "mean_response")


def null_prediction(control_cells: ad.AnnData) -> ad.AnnData:
    return _prediction(control_cells, dense_matrix(control_cells), "null")
