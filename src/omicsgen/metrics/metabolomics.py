"""Metabolomics batch-correction metrics: QC agreement and what a classifier can still learn.

Pooled QC injections are the same material measured again and again, so after a good
correction they should coincide: small distances in PCA space, Pearson correlations near
1, a low relative standard deviation (RSD) of each feature across QCs. A cross-validated
classifier should no longer recognise the batch (accuracy down) but still separate the
biological classes (AUC kept).

All functions take samples × features arrays on the original intensity scale (any scale
works; each says what it assumes) and are deterministic for a given ``seed``. The RSD is
only meaningful on intensities: for log-scale input pass ``input_scale="log"`` and it is
computed on ``2**values`` (log2 assumed, the usual base of public sets).

Two scales for the scores that depend on the scale (QC PCA distance, batch accuracy):
the values as given — the intensity scale, each feature standardised, so a few very
intense samples weigh a lot — and :func:`log_standardise`d values (log2(x + 1), then each
feature standardised), reported under keys ending in ``_log_standardised``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

INPUT_SCALES = ("intensity", "log")


def rsd_scale(input_scale: str = "intensity") -> str:
    """How :func:`qc_rsd` treats values on ``input_scale`` (recorded as ``"rsd_scale"``)."""
    if input_scale not in INPUT_SCALES:
        raise ValueError(f"input_scale must be one of {'|'.join(INPUT_SCALES)}, got {input_scale!r}")
    return "intensity" if input_scale == "intensity" else "intensity (2**x, input was log-scale)"


def _standardise(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    std = values.std(axis=0)
    return (values - values.mean(axis=0)) / np.where(std > 0, std, 1.0)


#: what each scale of :func:`correction_metrics` means (written to metrics.json)
SCALES = {
    "intensity": "the values as given (intensities), each feature standardised before PCA / the classifier",
    "log_standardised": "log2(x + 1) of the intensities (values below 0 count as 0; log-scale input is "
    "used as it is), then each feature standardised (keys ending in _log_standardised)",
}


def log_standardise(values: np.ndarray, input_scale: str = "intensity") -> np.ndarray:
    """log2(x + 1), then per-feature standardisation (mean 0, sd 1; constant features 0).

    Intensities below 0 (a correction can overshoot) count as 0. Log-scale input
    (``input_scale="log"``) is already logged and is only standardised.
    """
    values = np.asarray(values, dtype=np.float64)
    if rsd_scale(input_scale) == "intensity":
        values = np.log2(np.clip(values, 0.0, None) + 1.0)
    return _standardise(values)


def pca_embedding(values: np.ndarray, n_components: int = 3) -> np.ndarray:
    """PCA scores of all samples after per-feature standardisation (full, exact SVD)."""
    from sklearn.decomposition import PCA

    standardised = _standardise(values)
    n_components = min(n_components, *standardised.shape)
    return PCA(n_components=n_components, svd_solver="full").fit_transform(standardised)


def qc_pca_distance(values: np.ndarray, is_qc: np.ndarray, n_components: int = 3) -> float:
    """Mean pairwise Euclidean distance between QC samples in a PCA of all samples.

    NormAE's headline metric (56.55 → 7.38 in the paper) and its model-selection score.
    Identical QCs give 0.
    """
    from scipy.spatial.distance import pdist

    embedding = pca_embedding(values, n_components)
    return float(pdist(embedding[np.asarray(is_qc, dtype=bool)]).mean())


def qc_correlation(values: np.ndarray, is_qc: np.ndarray) -> float:
    """Mean Pearson correlation (across features) over all pairs of QC samples."""
    qc = np.asarray(values, dtype=np.float64)[np.asarray(is_qc, dtype=bool)]
    correlation = np.corrcoef(qc)
    upper = np.triu_indices(len(qc), k=1)
    return float(correlation[upper].mean())


def qc_rsd(values: np.ndarray, is_qc: np.ndarray, input_scale: str = "intensity") -> np.ndarray:
    """Per-feature relative standard deviation across QCs, in percent: 100 · sd / |mean|
    (sd with ddof=1). Intensities are expected, i.e. positive means; log-scale values
    (``input_scale="log"``) are taken back to intensities as ``2**values`` first."""
    qc = np.asarray(values, dtype=np.float64)[np.asarray(is_qc, dtype=bool)]
    if rsd_scale(input_scale) != "intensity":
        qc = np.exp2(qc)
    mean = qc.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return 100.0 * qc.std(axis=0, ddof=1) / np.abs(mean)


def median_qc_rsd(values: np.ndarray, is_qc: np.ndarray, input_scale: str = "intensity") -> float:
    """Median over features of :func:`qc_rsd` (non-finite RSDs ignored)."""
    rsd = qc_rsd(values, is_qc, input_scale)
    return float(np.median(rsd[np.isfinite(rsd)]))


def _classifier(n_components: int, seed: int):
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(),
        # whitened scores keep lbfgs well conditioned (raw PC variances span orders of magnitude)
        PCA(n_components=n_components, whiten=True, svd_solver="full"),
        LogisticRegression(max_iter=2000, random_state=seed),
    )


def _folds(labels: np.ndarray, n_folds: int, seed: int):
    from sklearn.model_selection import StratifiedKFold

    smallest = int(np.unique(labels, return_counts=True)[1].min())
    if smallest < 2:
        raise ValueError(f"every label needs at least 2 samples for cross-validation, one has {smallest}")
    return StratifiedKFold(n_splits=min(n_folds, smallest), shuffle=True, random_state=seed)


def batch_accuracy_chance(batches: Sequence) -> float:
    """The accuracy of always naming the largest batch: what :func:`batch_accuracy` gets
    from data that says nothing about the batch (cross-validation often lands below it)."""
    _, counts = np.unique(np.asarray(batches).astype(str), return_counts=True)
    return float(counts.max() / counts.sum())


def batch_accuracy_target_met(method: float, combat: float, chance: float) -> bool:
    """NormAE's batch bar: below ComBat, or both at or below chance (ComBat's exact
    removal of batch means often lands below chance under cross-validation, where a lower
    number no longer means less batch)."""
    return method < combat or (method <= chance and combat <= chance)


def batch_accuracy(
    values: np.ndarray, batches: Sequence, n_folds: int = 5, n_components: int = 10, seed: int = 0
) -> float:
    """Cross-validated accuracy of standardise → PCA → logistic regression predicting the
    batch (lower is better; chance is about 1 / number of batches)."""
    from sklearn.model_selection import cross_val_score

    labels = np.asarray(batches).astype(str)
    model = _classifier(min(n_components, len(labels) // 2), seed)
    scores = cross_val_score(model, np.asarray(values, dtype=np.float64), labels, cv=_folds(labels, n_folds, seed))
    return float(scores.mean())


def class_auc(
    values: np.ndarray, classes: Sequence, positive: str, n_folds: int = 5, n_components: int = 10, seed: int = 0
) -> float:
    """Cross-validated ROC AUC of the same classifier separating two biological classes;
    ``classes`` must hold exactly two distinct labels, one of them ``positive``."""
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import cross_val_predict

    labels = np.asarray(classes).astype(str)
    if sorted(set(labels)) != sorted({positive, *labels}) or len(set(labels)) != 2:
        raise ValueError(f"class_auc needs two classes including {positive!r}, got {sorted(set(labels))}")
    target = (labels == positive).astype(int)
    model = _classifier(min(n_components, len(labels) // 2), seed)
    scores = cross_val_predict(
        model, np.asarray(values, dtype=np.float64), target, cv=_folds(target, n_folds, seed), method="predict_proba"
    )[:, 1]
    return float(roc_auc_score(target, scores))


def correction_metrics(  # noqa: PLR0913
    values: np.ndarray,
    is_qc: np.ndarray,
    batches: Sequence,
    classes: Sequence,
    class_labels: Sequence[str] | None,
    pca_components: int = 3,
    n_folds: int = 5,
    classifier_components: int = 10,
    seed: int = 0,
    input_scale: str = "intensity",
    log_standardised: bool = False,
) -> dict[str, float | str]:
    """Every metric for one version of the data (uncorrected, ComBat, NormAE…).

    Batch accuracy uses every sample; the class AUC only the samples whose class is one of
    the two ``class_labels`` (the first is the positive class). ``class_labels=None``:
    no ``"class_auc"`` (nothing to compare). ``"rsd_scale"`` says on which scale the RSD
    was computed (see :func:`qc_rsd`); it is the only non-numeric entry. With
    ``log_standardised`` the QC PCA distance and the batch accuracy are also computed on
    :func:`log_standardise`d values (``"qc_pca_distance_log_standardised"``,
    ``"batch_accuracy_log_standardised"``; :data:`SCALES`).
    """
    is_qc = np.asarray(is_qc, dtype=bool)
    results: dict[str, float | str] = {
        "qc_pca_distance": qc_pca_distance(values, is_qc, pca_components),
        "qc_correlation": qc_correlation(values, is_qc),
        "median_qc_rsd": median_qc_rsd(values, is_qc, input_scale),
        "batch_accuracy": batch_accuracy(values, batches, n_folds, classifier_components, seed),
    }
    if log_standardised:
        logged = log_standardise(values, input_scale)
        results["qc_pca_distance_log_standardised"] = qc_pca_distance(logged, is_qc, pca_components)
        results["batch_accuracy_log_standardised"] = batch_accuracy(logged, batches, n_folds, classifier_components, seed)
    if class_labels is not None:
        classes = np.asarray(classes).astype(str)
        biological = np.isin(classes, list(class_labels))
        results["class_auc"] = class_auc(
            np.asarray(values)[biological], classes[biological], class_labels[0], n_folds, classifier_components, seed
        )
    results["rsd_scale"] = rsd_scale(input_scale)
    return results


def check_class_labels(
    obs: pd.DataFrame, class_column: str, class_labels: Sequence[str] | None, min_samples: int = 2
) -> list[str] | None:
    """Check the configured classes of the class AUC before anything is trained.

    ``class_labels`` unset (None or empty): nothing to check, returns None. Otherwise it
    must name two distinct classes, each present in ``obs[class_column]`` with at least
    ``min_samples`` samples (the cross-validation needs two per class); returns them as
    strings.

    Raises:
        InputValidationError: naming ``normae.metrics.class_labels``, the column and the
            classes it has.
    """
    from omicsgen.preprocessing.validate import InputValidationError, preview

    if not class_labels:
        return None
    labels = [str(label) for label in class_labels]
    if class_column not in obs.columns:
        raise InputValidationError(
            f"normae.metrics.class_labels is set but the class column '{class_column}' is missing; "
            f"columns: {preview(obs.columns, limit=20)}"
        )
    counts = obs[class_column].astype(str).value_counts()
    found = f"column '{class_column}' (it has {preview(sorted(counts.index), limit=20)})"
    if len(labels) != 2 or labels[0] == labels[1]:
        raise InputValidationError(
            f"normae.metrics.class_labels must name two different classes, got {preview(labels)}; {found}"
        )
    absent = [label for label in labels if label not in counts.index]
    if absent:
        raise InputValidationError(
            f"normae.metrics.class_labels names {preview(absent)}, not found in {found}"
        )
    small = [label for label in labels if counts[label] < min_samples]
    if small:
        raise InputValidationError(
            f"normae.metrics.class_labels: class(es) {preview(small)} in column '{class_column}' have "
            f"fewer than {min_samples} samples ({preview(int(counts[s]) for s in small)}); the "
            "cross-validated class AUC needs at least that many"
        )
    return labels

