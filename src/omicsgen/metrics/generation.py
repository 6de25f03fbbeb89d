"""How realistic are generated cells? Metrics that compare two sets of cells.

Every metric compares a *reference* set of real cells with a *query* set (generated cells,
or — as a control — other real cells). Cells are compared in one shared space: log1p of
the library-size-normalised expression, projected on the first principal components of
all real cells (:class:`ReferenceSpace`), so both query sets are judged alike.

* :func:`classifier_auc` — a random forest tries to tell reference from query cells;
  cross-validated ROC AUC, 0.5 = indistinguishable.
* :func:`mmd_rbf` — maximum mean discrepancy with a sum of RBF kernels whose bandwidths
  are multiples of the median pairwise distance.
* :func:`gene_statistic_correlations` — Pearson correlation of per-gene means, variances
  and zero fractions (on the expression scale, not the PCA space).
* :func:`density_coverage` — Naeem et al. 2020 with ``k`` nearest neighbours.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.decomposition import PCA
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.neighbors import NearestNeighbors

from omicsgen.metrics.sampling import stratified_subsample, subsample_note

logger = logging.getLogger(__name__)

DEFAULT_MMD_SCALES = (0.5, 1.0, 2.0, 4.0)
#: cells per real half (reference, control) compared at most; generated cells match the
#: control's size per type (``cscgan.evaluation.max_cells``)
MAX_COMPARED_CELLS = 5_000


@dataclass
class ReferenceSpace:
    """log1p → PCA fitted on the reference cells; applied to any set of cells."""

    pca: PCA

    @classmethod
    def fit(cls, reference: np.ndarray, n_components: int = 50, seed: int = 0) -> ReferenceSpace:
        n_components = int(min(n_components, reference.shape[0] - 1, reference.shape[1]))
        return cls(PCA(n_components=n_components, random_state=seed).fit(np.log1p(reference)))

    def transform(self, cells: np.ndarray) -> np.ndarray:
        return self.pca.transform(np.log1p(cells))


def _balanced(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Subsample the larger set so both sets weigh the same in a classifier."""
    n = min(len(a), len(b))
    pick = lambda x: x[np.sort(rng.choice(len(x), n, replace=False))] if len(x) > n else x  # noqa: E731
    return pick(a), pick(b)


def classifier_auc(
    reference: np.ndarray, query: np.ndarray, folds: int = 5, n_trees: int = 100, seed: int = 0
) -> float:
    """Cross-validated ROC AUC of a random forest separating ``reference`` from ``query``.

    Both inputs are already in the comparison space (e.g. PCA-50). 0.5 means the forest
    cannot tell them apart; 1.0 means it always can.
    """
    rng = np.random.default_rng(seed)
    a, b = _balanced(reference, query, rng)
    folds = int(min(folds, len(a), len(b)))
    if folds < 2:
        return float("nan")
    features = np.vstack([a, b])
    target = np.r_[np.zeros(len(a)), np.ones(len(b))]
    forest = RandomForestClassifier(n_estimators=n_trees, random_state=seed, n_jobs=1)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scores = cross_val_predict(forest, features, target, cv=splitter, method="predict_proba")[:, 1]
    return float(roc_auc_score(target, scores))


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def mmd_rbf(
    reference: np.ndarray,
    query: np.ndarray,
    scales: Sequence[float] = DEFAULT_MMD_SCALES,
    bandwidth: float | None = None,
) -> float:
    """Unbiased squared MMD with kernel ``Σ_s exp(-d² / (2 (s·σ)²))``.

    ``σ`` is ``bandwidth`` or the median pairwise distance of the reference cells; pass the
    same ``bandwidth`` to make several comparisons use one kernel.
    """
    x, y = np.asarray(reference, np.float64), np.asarray(query, np.float64)
    if len(x) < 2 or len(y) < 2:
        return float("nan")
    dxx, dyy, dxy = _squared_distances(x, x), _squared_distances(y, y), _squared_distances(x, y)
    if bandwidth is None:
        bandwidth = median_distance(x)
    kernel = lambda d: sum(np.exp(-d / (2.0 * (s * bandwidth) ** 2)) for s in scales)  # noqa: E731
    kxx, kyy, kxy = kernel(dxx), kernel(dyy), kernel(dxy)
    n, m = len(x), len(y)
    within_x = (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within_x + within_y - 2.0 * kxy.mean())


def median_distance(cells: np.ndarray) -> float:
    d = np.sqrt(_squared_distances(cells, cells))
    upper = d[np.triu_indices(len(cells), k=1)]
    return float(np.median(upper)) if upper.size and np.median(upper) > 0 else 1.0


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def gene_statistic_correlations(reference: np.ndarray, query: np.ndarray) -> dict[str, float]:
    """Pearson correlation across genes of mean, variance (of log1p) and fraction of zeros."""
    ref, qry = np.log1p(reference), np.log1p(query)
    return {
        "mean_correlation": _pearson(ref.mean(0), qry.mean(0)),
        "variance_correlation": _pearson(ref.var(0), qry.var(0)),
        "zero_fraction_correlation": _pearson((reference == 0).mean(0), (query == 0).mean(0)),
    }


def density_coverage(reference: np.ndarray, query: np.ndarray, k: int = 5) -> dict[str, float]:
    """Density and coverage (Naeem et al. 2020) of ``query`` around the ``reference`` manifold.

    Each reference cell owns a ball reaching its k-th nearest reference neighbour. Density:
    how many balls a query cell falls in, over k, averaged (≈ 1 for matching sets).
    Coverage: the fraction of reference balls that hold at least one query cell.
    """
    k = int(min(k, len(reference) - 1))
    if k < 1 or len(query) == 0:
        return {"density": float("nan"), "coverage": float("nan")}
    neighbours = NearestNeighbors(n_neighbors=k + 1).fit(reference)
    radii = neighbours.kneighbors(reference)[0][:, -1]
    inside = np.sqrt(_squared_distances(reference, query)) <= radii[:, None]
    return {
        "density": float(inside.sum() / (k * len(query))),
        "coverage": float(inside.any(axis=1).mean()),
    }


def compare_cells(
    reference: np.ndarray,
    query: np.ndarray,
    space: ReferenceSpace,
    bandwidth: float | None = None,
    k: int = 5,
    seed: int = 0,
) -> dict[str, float]:
    """All metrics of one reference/query pair (expression-scale matrices)."""
    ref_pcs, qry_pcs = space.transform(reference), space.transform(query)
    out = {
        "n_reference": len(reference),
        "n_query": len(query),
        "classifier_auc": classifier_auc(ref_pcs, qry_pcs, seed=seed),
        "mmd": mmd_rbf(ref_pcs, qry_pcs, bandwidth=bandwidth),
    }
    out.update(gene_statistic_correlations(reference, query))
    out.update(density_coverage(ref_pcs, qry_pcs, k=k))
    return out


def split_halves(labels: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint halves of the cells, stratified by ``labels`` (indices)."""
    rng = np.random.default_rng(seed)
    first, second = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        half = len(members) // 2
        first.append(members[:half])
        second.append(members[half:])
    return np.sort(np.concatenate(first)), np.sort(np.concatenate(second))


def evaluate_generation(  # noqa: PLR0913
    real: np.ndarray,
    real_labels: np.ndarray,
    generated: np.ndarray,
    generated_labels: np.ndarray,
    n_components: int = 50,
    k: int = 5,
    min_cells: int = 10,
    max_cells: int | None = MAX_COMPARED_CELLS,
    seed: int = 0,
) -> dict[str, Any]:
    """Real-vs-generated metrics beside a real-vs-real control, overall and per cell type.

    The real cells are split into two stratified halves. Half A is the reference; the
    control compares half B with it, and generated cells are compared with it after
    subsampling them to half B's size per cell type, so both rows measure the same thing.
    Cell types with fewer than ``min_cells`` cells on a side are skipped (with a warning).
    Each half keeps at most ``max_cells`` cells (a seeded subsample, stratified by type):
    the MMD and density need all pairwise distances, the classifier is cross-validated on
    every cell. ``scored_on_subsample`` in the result says when that happened.
    """
    real_labels = np.asarray(real_labels, dtype=str)
    generated_labels = np.asarray(generated_labels, dtype=str)
    rng = np.random.default_rng(seed)
    half_a, half_b = split_halves(real_labels, seed)
    halves = len(half_a) + len(half_b)
    half_a, half_b = (half[stratified_subsample(real_labels[half], max_cells, seed)] for half in (half_a, half_b))
    matched = []
    for label in np.unique(real_labels[half_b]):
        pool = np.flatnonzero(generated_labels == label)
        want = int((real_labels[half_b] == label).sum())
        matched.append(np.sort(rng.choice(pool, min(want, len(pool)), replace=False)))
    matched = np.sort(np.concatenate(matched)) if matched else np.array([], dtype=int)
    reference, reference_labels = real[half_a], real_labels[half_a]
    control, control_labels = real[half_b], real_labels[half_b]
    query, query_labels = generated[matched], generated_labels[matched]

    # PCA of ALL real cells: fitted on half A alone, it would make A's own noise
    # directions separable from any other set, inflating even the real-vs-real AUC.
    compared = np.sort(np.r_[half_a, half_b])  # every real cell unless the halves were capped
    space = ReferenceSpace.fit(real[compared] if len(compared) < len(real) else real, n_components, seed)
    bandwidth = median_distance(space.transform(reference))
    result: dict[str, Any] = {
        "overall": {
            "real_vs_real": compare_cells(reference, control, space, bandwidth, k, seed),
            "real_vs_generated": compare_cells(reference, query, space, bandwidth, k, seed),
        },
        "per_cell_type": {},
        "skipped_cell_types": [],
    }
    if note := subsample_note(halves, compared, max_cells, "cscgan.evaluation.max_cells (per half)"):
        result["scored_on_subsample"] = note
    for label in np.unique(reference_labels):
        sets = [reference[reference_labels == label], control[control_labels == label], query[query_labels == label]]
        if min(len(s) for s in sets) < min_cells:
            logger.warning(
                "cell type %r skipped in the per-type metrics: %s cells (reference, control, generated) < %d",
                label, [len(s) for s in sets], min_cells,
            )
            result["skipped_cell_types"].append(str(label))
            continue
        result["per_cell_type"][str(label)] = {
            "real_vs_real": compare_cells(sets[0], sets[1], space, bandwidth, k, seed),
            "real_vs_generated": compare_cells(sets[0], sets[2], space, bandwidth, k, seed),
        }
    return result


def summary_table(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Flatten :func:`evaluate_generation`'s output into rows (for logs and reports)."""
    rows = [{"cell_type": "overall", "comparison": c, **v} for c, v in metrics["overall"].items()]
    for label, comparisons in metrics["per_cell_type"].items():
        rows += [{"cell_type": label, "comparison": c, **v} for c, v in comparisons.items()]
    return rows
