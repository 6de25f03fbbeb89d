"""Perturbation-prediction metrics (scGen's evaluation).

R² here is the squared Pearson correlation, over genes, between a per-gene statistic
(mean or variance) of predicted cells and of real perturbed cells — for all genes and for
the top differentially expressed genes (Wilcoxon, perturbed vs control of the held-out
cell type). A bootstrap over cells (draws of a fraction of the predicted and of the real
cells, without replacement) gives its mean and standard deviation.

The metrics of recent perturbation benchmarks, computed once on all cells (no bootstrap):

- Pearson Δ: the Pearson correlation, over genes, of the predicted response
  mean(predicted) − mean(control) with the real one mean(stimulated) − mean(control), both
  against the real control cells of the held-out type; all genes and the top DEGs. It scores
  the direction of the change, which R² of means (dominated by the baseline expression
  every prediction shares with its control cells) does not. Undefined (``None``) when
  either response is constant: the null prediction's response is exactly zero.
- energy distance between the predicted and the real stimulated cells (Székely's
  E = 2·E‖X − Y‖ − E‖X − X′‖ − E‖Y − Y′‖, Euclidean, every pair including a cell with
  itself, so that identical samples give 0), in a PCA space fitted on the held-out type's
  real control and stimulated cells (:func:`evaluation_space`, 50 components), on at most
  2,000 cells per side drawn without replacement with a fixed seed. It compares whole
  distributions, not only means. Lower is better; the null prediction's value is the
  distance between the type's control and stimulated cells.
"""

from __future__ import annotations

from collections.abc import Sequence

import anndata as ad
import numpy as np
import scipy.sparse as sp

from omicsgen.metrics.sampling import rng_choice


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


#: scoring (the DEG test, the R² bootstrap, Δ and energy distance) uses at most this many
#: cells per condition and method: a seeded subsample above it (``scgen.evaluation.max_cells``)
MAX_SCORED_CELLS = 10_000


def scored_subsample(
    adata: ad.AnnData, cell_type: str, condition_key: str, cell_type_key: str, max_cells: int = MAX_SCORED_CELLS
) -> dict[str, int] | None:
    """How many cells per condition of ``cell_type`` were scored, when that was a subsample."""
    of_type = adata.obs.loc[adata.obs[cell_type_key].astype(str) == str(cell_type), condition_key].astype(str)
    counts = of_type.value_counts()
    if counts.max() <= max_cells:
        return None
    return {str(c): int(min(n, max_cells)) for c, n in counts.items()}


def at_most(cells: ad.AnnData, max_cells: int = MAX_SCORED_CELLS, seed: int = 0) -> ad.AnnData:
    """``cells``, or a seeded subsample of ``max_cells`` of them (in their order)."""
    if cells.n_obs <= max_cells:
        return cells
    return cells[np.sort(rng_choice(np.arange(cells.n_obs), max_cells, seed))]


def top_degs(  # noqa: PLR0913
    adata: ad.AnnData,
    cell_type: str,
    n_genes: int = 100,
    condition_key: str = "condition",
    control: str = "control",
    stimulated: str = "stimulated",
    cell_type_key: str = "cell_type",
    max_cells: int = MAX_SCORED_CELLS,
) -> list[str]:
    """The ``n_genes`` top-ranked genes of a Wilcoxon test (scanpy), stimulated vs control,
    within ``cell_type`` of the real cells in ``adata`` (at most ``max_cells`` per condition)."""
    import scanpy as sc

    chosen = np.flatnonzero(
        (adata.obs[cell_type_key].astype(str) == str(cell_type)).to_numpy()
        & adata.obs[condition_key].astype(str).isin([control, stimulated]).to_numpy()
    )
    conditions = adata.obs[condition_key].astype(str).to_numpy()[chosen]
    # above max_cells per condition the test runs on a seeded subsample (reported by the
    # caller via scored_subsample)
    chosen = np.sort(np.concatenate([
        rng_choice(chosen[conditions == c], max_cells) for c in (control, stimulated)
    ]))  # fmt: skip
    cells = adata[chosen]
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


#: the undefined-correlation threshold: a response whose spread over genes is below this
#: fraction of the expression scale (float32 rounding of a copy of the control cells)
_CONSTANT = 1e-6


def pearson_delta(predicted_mean: np.ndarray, control_mean: np.ndarray, real_mean: np.ndarray) -> float | None:
    """Pearson correlation over genes of the predicted response ``predicted_mean −
    control_mean`` and the real one ``real_mean − control_mean``; ``None`` (undefined) when
    either response is constant over genes, as the null prediction's is."""
    control_mean = np.asarray(control_mean, dtype=np.float64)
    predicted = np.asarray(predicted_mean, dtype=np.float64) - control_mean
    real = np.asarray(real_mean, dtype=np.float64) - control_mean
    scale = _CONSTANT * max(float(np.abs(control_mean).max(initial=0.0)), 1.0)
    if predicted.size < 2 or np.ptp(predicted) <= scale or np.ptp(real) <= scale:
        return None
    return float(np.corrcoef(predicted, real)[0, 1])


def _mean_pairwise_distance(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.spatial.distance import cdist

    return float(cdist(a, b).mean())


def energy_distance(x: np.ndarray, y: np.ndarray) -> float:
    """Energy distance 2·E‖X − Y‖ − E‖X − X′‖ − E‖Y − Y′‖ between two samples (rows),
    Euclidean, with every pair (V-statistic): 0 for identical samples, never negative."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    value = 2 * _mean_pairwise_distance(x, y) - _mean_pairwise_distance(x, x) - _mean_pairwise_distance(y, y)
    return max(value, 0.0)


def subsample(x: np.ndarray, max_cells: int, seed: int = 0) -> np.ndarray:
    """At most ``max_cells`` rows of ``x``, drawn without replacement (seeded), in order."""
    if len(x) <= max_cells:
        return x
    return x[np.sort(np.random.default_rng(seed).choice(len(x), max_cells, replace=False))]


def evaluation_space(control: ad.AnnData, real: ad.AnnData, n_components: int = 50, max_cells: int = 2000, seed: int = 0):
    """The PCA (fitted) in which energy distances are measured: on the held-out type's real
    control and stimulated cells, at most ``max_cells`` of each."""
    from sklearn.decomposition import PCA

    fit_on = np.vstack([subsample(_dense(control.X), max_cells, seed), subsample(_dense(real.X), max_cells, seed)])
    n_components = max(1, min(n_components, fit_on.shape[0] - 1, fit_on.shape[1]))
    return PCA(n_components=n_components, random_state=seed).fit(fit_on)


def response_scores(  # noqa: PLR0913
    predicted: ad.AnnData,
    control: ad.AnnData,
    real: ad.AnnData,
    degs: Sequence[str],
    space=None,
    max_cells: int = 2000,
    seed: int = 0,
) -> dict[str, float | None]:
    """``pearson_delta_all``, ``pearson_delta_top<k>`` (against the real ``control`` cells
    of the held-out type) and ``energy_distance`` (in ``space``, a fitted PCA from
    :func:`evaluation_space`; fitted here when not given) for the predicted vs the real
    perturbed cells (same genes, same order)."""
    if not list(predicted.var_names) == list(control.var_names) == list(real.var_names):
        raise ValueError("predicted, control and real cells must have the same genes in the same order")
    index = real.var_names.get_indexer(list(degs))
    if (index < 0).any():
        raise ValueError("some DEGs are not among the genes")
    pred_x, control_x, real_x = _dense(predicted.X), _dense(control.X), _dense(real.X)
    means = [m.mean(axis=0) for m in (pred_x, control_x, real_x)]
    if space is None:
        space = evaluation_space(control, real, max_cells=max_cells, seed=seed)
    return {
        "pearson_delta_all": pearson_delta(*means),
        f"pearson_delta_top{len(degs)}": pearson_delta(*(m[index] for m in means)),
        "energy_distance": energy_distance(
            space.transform(subsample(pred_x, max_cells, seed)), space.transform(subsample(real_x, max_cells, seed))
        ),
    }
