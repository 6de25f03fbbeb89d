"""Perturbation-prediction metrics (scGen's evaluation).

R² here is the squared Pearson correlation, over genes, between a per-gene statistic
(mean or variance) of predicted cells and of real perturbed cells — for all genes and for
the top differentially expressed genes (Wilcoxon, perturbed vs control of the held-out
cell type). A bootstrap over cells (draws of a fraction of the predicted and of the real
cells, without replacement) gives its mean and standard deviation.
"""

from __future__ import annotations

from collections.abc import Sequence

import anndata as ad
import numpy as np
import scipy.sparse as sp


def _dense(matrix) -> np.ndarray:
    return np.asarray(matrix.toarray() if sp.issparse(matrix) else matrix, dtype=np.float64)


def cells_of(  # noqa: PLR0913
    adata: ad.AnnData,
    cell_type: str,
    condition: str,
    cell_type_key: str = "cell_type",
    condition_key: str = "condition",
    **_: str,
) -> ad.AnnData:
    """The cells of one cell type in one condition (a view). Extra keys (``control``,
    ``stimulated``) are accepted so that a whole keys mapping can be passed."""
    mask = (adata.obs[cell_type_key].astype(str) == str(cell_type)) & (
        adata.obs[condition_key].astype(str) == str(condition)
    )
    return adata[mask.to_numpy()]


def top_degs(  # noqa: PLR0913
    adata: ad.AnnData,
    cell_type: str,
    n_genes: int = 100,
    condition_key: str = "condition",
    control: str = "control",
    stimulated: str = "stimulated",
    cell_type_key: str = "cell_type",
) -> list[str]:
    """The ``n_genes`` top-ranked genes of a Wilcoxon test (scanpy), stimulated vs control,
    within ``cell_type`` of the real cells in ``adata``."""
    import scanpy as sc

    cells = adata[
        (adata.obs[cell_type_key].astype(str) == str(cell_type)).to_numpy()
        & adata.obs[condition_key].astype(str).isin([control, stimulated]).to_numpy()
    ]
    test = ad.AnnData(X=cells.X, obs=cells.obs[[condition_key]].astype(str).astype("category"))
    test.var_names = cells.var_names
    sc.tl.rank_genes_groups(
        test, groupby=condition_key, groups=[stimulated], reference=control,
        method="wilcoxon", n_genes=n_genes, tie_correct=False,
    )
    return [str(g) for g in test.uns["rank_genes_groups"]["names"][stimulated][:n_genes]]


def r_squared(a: np.ndarray, b: np.ndarray) -> float:
    """Squared Pearson correlation of two vectors (0 when either is constant)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1] ** 2)


_STATISTICS = {"mean": np.mean, "variance": np.var}


def bootstrap_r_squared(  # noqa: PLR0913
    predicted: np.ndarray,
    real: np.ndarray,
    statistic: str = "mean",
    n_draws: int = 100,
    fraction: float = 0.8,
    seed: int = 0,
) -> dict[str, float]:
    """R² of a per-gene statistic over ``n_draws`` draws of ``fraction`` of the predicted
    and of the real cells: ``{"mean", "sd", "full"}`` (``full`` uses every cell)."""
    reduce = _STATISTICS[statistic]
    rng = np.random.default_rng(seed)
    n_pred = max(1, int(round(fraction * len(predicted))))
    n_real = max(1, int(round(fraction * len(real))))
    draws = [
        r_squared(
            reduce(predicted[rng.choice(len(predicted), n_pred, replace=False)], axis=0),
            reduce(real[rng.choice(len(real), n_real, replace=False)], axis=0),
        )
        for _ in range(n_draws)
    ]
    return {
        "mean": float(np.mean(draws)),
        "sd": float(np.std(draws)),
        "full": r_squared(reduce(predicted, axis=0), reduce(real, axis=0)),
    }


def perturbation_scores(  # noqa: PLR0913
    predicted: ad.AnnData,
    real: ad.AnnData,
    degs: Sequence[str],
    n_draws: int = 100,
    fraction: float = 0.8,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """``r2_<mean|variance>_<all|top<k>>`` → bootstrap ``{"mean", "sd", "full"}`` for the
    predicted vs the real perturbed cells (same genes, same order)."""
    if list(predicted.var_names) != list(real.var_names):
        raise ValueError("predicted and real cells must have the same genes in the same order")
    genes = {"all": slice(None), f"top{len(degs)}": real.var_names.get_indexer(list(degs))}
    if (genes[f"top{len(degs)}"] < 0).any():
        raise ValueError("some DEGs are not among the genes")
    pred_x, real_x = _dense(predicted.X), _dense(real.X)
    return {
        f"r2_{statistic}_{subset}": bootstrap_r_squared(
            pred_x[:, index], real_x[:, index], statistic, n_draws, fraction, seed
        )
        for statistic in ("mean", "variance")
        for subset, index in genes.items()
    }
