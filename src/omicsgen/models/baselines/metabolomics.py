"""QC-based drift and batch correction for metabolomics: the baselines NormAE is compared with.

Both methods use the pooled QC injections — the same material measured again and again —
as the reference of the systematic error, per batch and per feature, and work on the
intensity scale (samples × features, positive values):

- :func:`qc_rsc` — QC robust signal correction (Dunn et al. 2011, Nat Protoc 6:1060;
  Kirwan et al. 2013, Anal Bioanal Chem 405:5147): a robust LOWESS of each feature's QC
  signal along the injection order, fitted per batch (on log2 intensities by default), its
  span chosen per feature and batch by leave-one-out cross-validation over the QCs; every
  sample is divided by the trend at its injection order and multiplied by the feature's
  QC median (all batches), which also removes the differences between batches.
- :func:`serrf` — systematic error removal using random forest (Fan et al. 2019, Anal Chem
  91:3590): per feature and batch a random forest, trained on the batch's QCs, predicts
  the feature's QC signal from the features most correlated with it (in the QCs and in the
  samples) and the injection order; QCs and samples are autoscaled separately within the
  batch, so a sample's predicted signal is its systematic error; samples are divided by
  it and rescaled to the feature's QC median. The forest is a small Breiman random forest
  (bootstrap, a random subset of predictors per split, variance reduction) compiled with
  numba: scikit-learn's costs about 0.5 ms of Python per tree, i.e. minutes for the
  thousands of (feature, batch) forests of one data set.
- :func:`cross_validated_qc_rsd` — the QC RSD of QCs left out of the fit (K folds over the
  QCs, stratified by batch): each QC is corrected by a model that never saw it, as SERRF's
  paper evaluates. The in-sample QC RSD of a QC-based method is optimistic by design.

Pure numpy (and numba for the forest, imported when SERRF runs); no torch.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from omicsgen.preprocessing.validate import InputValidationError, preview

#: the baselines of this module, by the name the parameters use
METHODS = ("qc_rsc", "serrf")


def _from_params(cls, params: Mapping[str, Any] | None, section: str):
    params = dict(params or {})
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(f"{section}: unknown parameter(s) {unknown}; known: {sorted(known)}")
    return cls(**params)


@dataclass(frozen=True)
class QCRSCConfig:
    """QC-RSC settings (``normae.baselines.qc_rsc``)."""

    #: LOWESS spans tried per feature and batch (fraction of the batch's QCs in a local fit;
    #: above 1 the bandwidth is widened as R's loess does, towards a straight line); the one
    #: with the smallest leave-one-QC-out error is used
    spans: tuple[float, ...] = (0.5, 0.75, 1.0, 2.0, 10.0)
    #: Cleveland's bisquare robustness iterations (outlying QCs down-weighted)
    robust_iterations: int = 2
    #: fit the trend on log2 intensities (a multiplicative drift, as pmp's QCRSC with log=TRUE)
    log_fit: bool = True
    #: a batch with fewer QCs is an error (a local linear fit needs three points)
    min_qc_per_batch: int = 3

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None = None, section: str = "qc_rsc") -> QCRSCConfig:
        config = _from_params(cls, {**(params or {})}, section)
        if "spans" in (params or {}):
            config = cls(**{**asdict(config), "spans": tuple(float(s) for s in config.spans)})
        if not config.spans or min(config.spans) <= 0:
            raise ValueError(f"{section}.spans must be positive numbers, got {list(config.spans)}")
        return config


@dataclass(frozen=True)
class SERRFConfig:
    """SERRF settings (``normae.baselines.serrf``)."""

    n_estimators: int = 100
    #: predictors per feature: the features most correlated with it in both QCs and samples
    n_correlated: int = 10
    #: add the injection order (scaled within the batch) as a predictor
    use_injection_order: bool = True
    #: fraction of the predictors tried at each split (regression default of R randomForest)
    max_features: float = 0.33
    #: nodes with fewer (bootstrap) samples are not split (ranger's regression default, 5)
    min_node_size: int = 5
    #: a batch with fewer QCs is an error (a forest on fewer QCs predicts their mean)
    min_qc_per_batch: int = 3
    seed: int = 0

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None = None, section: str = "serrf") -> SERRFConfig:
        config = _from_params(cls, params, section)
        if config.n_estimators < 1 or config.n_correlated < 0 or not 0 < config.max_features <= 1:
            raise ValueError(
                f"{section}: n_estimators ≥ 1, n_correlated ≥ 0 and 0 < max_features ≤ 1 needed, got {asdict(config)}"
            )
        return config


CONFIGS = {"qc_rsc": QCRSCConfig, "serrf": SERRFConfig}


# ------------------------------------------------------------------------------- checks


def check_qc_per_batch(
    is_qc: np.ndarray, batches: np.ndarray, minimum: int, parameter: str, n_folds: int | None = None
) -> None:
    """Every batch has at least ``minimum`` QCs — after leaving out a fold's share when
    ``n_folds`` is given (folds stratified by batch leave out at most ⌈n/K⌉ of a batch's n).

    Raises:
        InputValidationError: naming the batches, their QC counts and ``parameter``.
    """
    names, counts = np.unique(np.asarray(batches).astype(str)[np.asarray(is_qc, dtype=bool)], return_counts=True)
    every = {str(b): 0 for b in np.unique(np.asarray(batches).astype(str))}
    every.update({str(b): int(c) for b, c in zip(names, counts, strict=True)})
    if n_folds is None:
        small = {b: c for b, c in every.items() if c < minimum}
        if small:
            raise InputValidationError(
                f"batch(es) {preview(small)} have {preview(small.values())} QC sample(s); "
                f"{parameter}.min_qc_per_batch is {minimum}"
            )
        return
    small = {b: c for b, c in every.items() if c - math.ceil(c / n_folds) < minimum}
    if small:
        raise InputValidationError(
            f"cross-validated QC RSD: batch(es) {preview(small)} have {preview(small.values())} QC sample(s); "
            f"leaving out one of {n_folds} folds would leave fewer than {parameter}.min_qc_per_batch = {minimum} "
            "to fit (raise the number of folds, normae.baselines.cv_folds, or lower the minimum)"
        )


def _inputs(values, is_qc, batches, order):
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"values must be samples × features, got shape {values.shape}")
    n = values.shape[0]
    is_qc = np.asarray(is_qc, dtype=bool)
    batches = np.asarray(batches).astype(str)
    order = np.asarray(order, dtype=np.float64)
    if not len(is_qc) == len(batches) == len(order) == n:
        raise ValueError("values, is_qc, batches and order must describe the same samples")
    return values, is_qc, batches, order


def _prepare(cls, config, values, is_qc, batches, order, fit_mask, parameter):  # noqa: PLR0913
    """The configuration, the arrays, and the QCs to fit (checked: enough per batch)."""
    config = config if isinstance(config, cls) else cls.from_params(config, parameter)
    values, is_qc, batches, order = _inputs(values, is_qc, batches, order)
    fit = is_qc if fit_mask is None else np.asarray(fit_mask, dtype=bool) & is_qc
    check_qc_per_batch(fit, batches, config.min_qc_per_batch, parameter)
    return config, values, is_qc, batches, order, fit


# ------------------------------------------------------------------------------- QC-RSC


def _local_linear(x: np.ndarray, y: np.ndarray, weights: np.ndarray, x_eval: np.ndarray, span: float,
                  leave_one_out: bool = False) -> np.ndarray:  # fmt: skip
    """Tricube-weighted local linear fits (LOWESS), all features at once.

    ``x`` (n,), ``y`` and ``weights`` (n × p; 0 = not used), ``x_eval`` (m,). The
    neighbourhood holds ⌈span·n⌉ points (at least 3); span > 1 widens the bandwidth by that
    factor. ``leave_one_out``: ``x_eval`` is ``x`` and point i is left out of its own fit.
    Where fewer than two distinct points carry weight the fit is their weighted mean; with
    no weight at all it is NaN.
    """
    n = len(x)
    distance = np.abs(x_eval[:, None] - x[None, :])
    if leave_one_out:
        np.fill_diagonal(distance, np.inf)
    available = n - 1 if leave_one_out else n
    k = min(available, max(3, math.ceil(span * available)))
    bandwidth = np.sort(distance, axis=1)[:, k - 1] * max(1.0, span)
    bandwidth = np.where(bandwidth > 0, bandwidth, 1.0)
    kernel = np.clip(1.0 - (distance / bandwidth[:, None]) ** 3, 0.0, None) ** 3  # inf → 0
    s0 = kernel @ weights
    s1 = kernel @ (x[:, None] * weights)
    s2 = kernel @ (x[:, None] ** 2 * weights)
    t0 = kernel @ (weights * y)
    t1 = kernel @ (x[:, None] * weights * y)
    with np.errstate(divide="ignore", invalid="ignore"):
        determinant = s0 * s2 - s1**2
        well_posed = determinant > 1e-9 * np.maximum(s0, 1e-300) ** 2
        slope = np.where(well_posed, (s0 * t1 - s1 * t0) / np.where(well_posed, determinant, 1.0), 0.0)
        intercept = (t0 - slope * s1) / s0
    return np.where(s0 > 0, intercept + slope * x_eval[:, None], np.nan)


def _bisquare(residuals: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Cleveland's robustness weights: bisquare of residual / (6 · median |residual|)."""
    absolute = np.where(valid, np.abs(residuals), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a feature without valid QCs
        scale = 6.0 * np.nanmedian(absolute, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = absolute / scale
    weights = np.where(u < 1, (1 - u**2) ** 2, 0.0)
    weights = np.where(scale > 0, weights, 1.0)  # an exact fit: nothing to down-weight
    return np.where(valid, np.nan_to_num(weights, nan=0.0), 0.0)


def _robust_lowess(x, y, valid, x_eval, span, iterations, leave_one_out=False):
    weights = valid.astype(np.float64)
    for _ in range(iterations):
        fitted = _local_linear(x, y, weights, x, span)
        weights = _bisquare(y - fitted, valid & np.isfinite(fitted)) * valid
    return _local_linear(x, y, weights, x_eval, span, leave_one_out)


def qc_trend(order_qc: np.ndarray, signal: np.ndarray, order_eval: np.ndarray, config: QCRSCConfig) -> tuple[np.ndarray, np.ndarray]:
    """The QC trend of every feature of one batch at ``order_eval``, and the span chosen per
    feature (leave-one-QC-out mean absolute error; ties: the larger span, smoother).

    ``signal``: QC values (QCs × features) on the fitting scale, NaN where missing. Outside
    the QCs' injection-order range the trend is held constant (no extrapolation).
    """
    valid = np.isfinite(signal)
    y = np.where(valid, signal, 0.0)
    low, high = order_qc.min(), order_qc.max()
    centre, width = (low + high) / 2, max(high - low, 1.0)
    x = (order_qc - centre) / width
    x_eval = (np.clip(order_eval, low, high) - centre) / width
    spans = sorted(config.spans, reverse=True)
    errors = []
    for span in spans:
        loo = _robust_lowess(x, y, valid, x, span, config.robust_iterations, leave_one_out=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            errors.append(np.nanmean(np.where(valid, np.abs(y - loo), np.nan), axis=0))
    errors = np.nan_to_num(np.array(errors), nan=np.inf)
    best = np.argmin(errors, axis=0)  # first minimum: the largest span among ties
    trend = np.full((len(order_eval), signal.shape[1]), np.nan)
    for i, span in enumerate(spans):
        chosen = best == i
        if chosen.any():
            trend[:, chosen] = _robust_lowess(x, y[:, chosen], valid[:, chosen], x_eval, span, config.robust_iterations)
    return trend, np.asarray(spans)[best]


def _rescale(values, factor, reference):
    """values / factor · reference where the factor is usable, else values unchanged."""
    usable = np.isfinite(factor) & (factor > 0) & np.isfinite(reference)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(usable, values / np.where(usable, factor, 1.0) * reference[None, :], values)


def _qc_median(values, fit):
    qc = np.where(values[fit] > 0, values[fit], np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(qc, axis=0)


def qc_rsc(
    values: np.ndarray,
    is_qc: np.ndarray,
    batches: Sequence,
    order: Sequence,
    config: QCRSCConfig | Mapping[str, Any] | None = None,
    fit_mask: np.ndarray | None = None,
    parameter: str = "qc_rsc",
) -> np.ndarray:
    """QC-RSC-corrected intensities (samples × features).

    Per batch and feature: the robust LOWESS trend of the QCs along ``order`` (on log2
    values with ``log_fit``; QC values ≤ 0 or NaN are left out); every sample of the batch
    is divided by the trend at its injection order and multiplied by the feature's median
    over the fitted QCs of all batches. ``fit_mask``: the QCs the trends are fitted on
    (default: every QC; cross-validation leaves some out — they are corrected, not fitted).
    A feature without a usable trend in a batch keeps its values there.

    Raises:
        InputValidationError: a batch with fewer than ``min_qc_per_batch`` fitted QCs,
            naming ``<parameter>.min_qc_per_batch``.
    """
    config, values, is_qc, batches, order, fit = _prepare(QCRSCConfig, config, values, is_qc, batches, order,
                                                          fit_mask, parameter)  # fmt: skip
    corrected = values.copy()
    reference = _qc_median(values, fit)
    for batch in np.unique(batches):
        rows = batches == batch
        qc_rows = rows & fit
        signal = np.where(values[qc_rows] > 0, values[qc_rows], np.nan) if config.log_fit else values[qc_rows]
        signal = np.log2(signal) if config.log_fit else signal
        trend, _ = qc_trend(order[qc_rows], signal, order[rows], config)
        trend = np.exp2(trend) if config.log_fit else trend
        corrected[rows] = _rescale(values[rows], trend, reference)
    return corrected


# -------------------------------------------------------------------------------- SERRF


def _autoscale(block: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
    """(block − mean) / sd per feature, statistics from ``reference`` (default: the block);
    NaN → 0 (the mean), constant features → 0."""
    reference = block if reference is None else reference
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean, sd = np.nanmean(reference, axis=0), np.nanstd(reference, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = (block - mean) / np.where(sd > 0, sd, np.inf)
    return np.nan_to_num(scaled, nan=0.0, posinf=0.0, neginf=0.0)


def _correlation_columns(z: np.ndarray) -> np.ndarray:
    """Columns scaled so that their cross-product is the Pearson correlation."""
    centred = z - z.mean(axis=0)
    norm = np.sqrt((centred**2).sum(axis=0))
    return centred / np.where(norm > 0, norm, np.inf)


def correlated_features(qc_scaled: np.ndarray, sample_scaled: np.ndarray, k: int, block: int = 512) -> np.ndarray:
    """For every feature the ``k`` other features most correlated with it in both QCs and
    samples: ranked by min(|r| in the QCs, |r| in the samples) (features × k indices;
    ties by index). Either matrix may have no rows (its correlations count as 1)."""
    p = qc_scaled.shape[1]
    k = min(k, p - 1)
    if k <= 0:
        return np.zeros((p, 0), dtype=np.int64)
    parts = [_correlation_columns(m) for m in (qc_scaled, sample_scaled) if len(m) > 1]
    chosen = np.empty((p, k), dtype=np.int64)
    for start in range(0, p, block):
        stop = min(start + block, p)
        score = np.ones((stop - start, p))
        for part in parts:
            score = np.minimum(score, np.abs(part[:, start:stop].T @ part))
        score[np.arange(stop - start), np.arange(start, stop)] = -np.inf
        top = np.argsort(-score, axis=1, kind="stable")[:, :k]
        chosen[start:stop] = top
    return chosen


_FOREST = None


def _compiled_forest():
    """The numba kernels, compiled on first use (cached on disk by numba)."""
    global _FOREST
    if _FOREST is None:
        from omicsgen.models.baselines import _forest

        _FOREST = _forest.batch_forests
    return _FOREST


def serrf(
    values: np.ndarray,
    is_qc: np.ndarray,
    batches: Sequence,
    order: Sequence,
    config: SERRFConfig | Mapping[str, Any] | None = None,
    fit_mask: np.ndarray | None = None,
    parameter: str = "serrf",
) -> np.ndarray:
    """SERRF-corrected intensities (samples × features).

    Within each batch the QCs and the other samples are autoscaled separately (QCs left
    out of the fit with the fitted QCs' statistics); the predictors of feature j are the
    ``n_correlated`` features most correlated with it (:func:`correlated_features`, on the
    fitted QCs and the non-QC samples of all batches, each autoscaled within its batch)
    plus, with ``use_injection_order``, the injection order scaled by the batch's QCs. Per
    batch a random forest learns the feature's fitted-QC values relative to their mean;
    its prediction for a sample is that sample's relative systematic error, so the sample
    is divided by prediction × the batch's QC mean and multiplied by the feature's median
    over the fitted QCs of all batches. Deterministic for a ``seed``.

    Raises:
        InputValidationError: a batch with fewer than ``min_qc_per_batch`` fitted QCs,
            naming ``<parameter>.min_qc_per_batch``.
    """
    config, values, is_qc, batches, order, fit = _prepare(SERRFConfig, config, values, is_qc, batches, order,
                                                          fit_mask, parameter)  # fmt: skip
    observed = np.where(values > 0, values, np.nan)  # intensities: ≤ 0 or NaN is not a signal
    p = values.shape[1]

    # predictors: autoscaled within batch (QCs by the fitted QCs, samples by themselves)
    scaled = np.zeros_like(values)
    for batch in np.unique(batches):
        rows = batches == batch
        scaled[rows & is_qc] = _autoscale(observed[rows & is_qc], observed[rows & fit])
        samples = rows & ~is_qc
        if samples.any():
            scaled[samples] = _autoscale(observed[samples])
    neighbours = correlated_features(scaled[fit], scaled[~is_qc], config.n_correlated)
    if config.use_injection_order:
        neighbours = np.hstack([neighbours, np.full((p, 1), p, dtype=np.int64)])
    n_try = max(1, int(config.max_features * neighbours.shape[1]))

    reference = _qc_median(values, fit)
    corrected = values.copy()
    forests = _compiled_forest()
    for index, batch in enumerate(np.unique(batches)):
        rows = batches == batch
        qc_order = order[rows & fit]
        spread = qc_order.std() if qc_order.std() > 0 else 1.0
        order_column = ((order - qc_order.mean()) / spread)[:, None]
        predictors = np.hstack([scaled, order_column])
        target = observed[rows & fit]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            level = np.nanmean(target, axis=0)
        relative = target / level
        predicted = forests(
            np.ascontiguousarray(predictors[rows & fit]),
            np.ascontiguousarray(np.nan_to_num(relative, nan=-1.0)),  # −1: not a training value
            np.ascontiguousarray(predictors[rows]),
            np.ascontiguousarray(neighbours),
            config.n_estimators,
            n_try,
            config.min_node_size,
            config.seed * 1_000_003 + index,
        )
        corrected[rows] = _rescale(values[rows], predicted * level, reference)
    return corrected


# ---------------------------------------------------------------------- cross-validation

CORRECTIONS: dict[str, Callable[..., np.ndarray]] = {"qc_rsc": qc_rsc, "serrf": serrf}


def qc_folds(is_qc: np.ndarray, batches: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Fold number (0…K−1) of every QC, −1 for other samples: K folds over the QCs,
    stratified by batch (each batch's QCs spread over the folds), shuffled with ``seed``."""
    from sklearn.model_selection import StratifiedKFold

    is_qc = np.asarray(is_qc, dtype=bool)
    qc_index = np.flatnonzero(is_qc)
    if n_folds < 2 or n_folds > len(qc_index):
        raise InputValidationError(f"cross-validated QC RSD: {n_folds} folds over {len(qc_index)} QCs (2 … n_qc)")
    folds = np.full(len(is_qc), -1)
    labels = np.asarray(batches).astype(str)[qc_index]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a batch with fewer QCs than folds
        splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        for fold, (_, held_out) in enumerate(splitter.split(qc_index, labels)):
            folds[qc_index[held_out]] = fold
    return folds


def cross_validated_qc_rsd(  # noqa: PLR0913
    method: str,
    values: np.ndarray,
    is_qc: np.ndarray,
    batches: Sequence,
    order: Sequence,
    config: Any = None,
    n_folds: int = 5,
    seed: int = 0,
    parameter: str | None = None,
) -> dict[str, Any]:
    """The QC RSD of QCs corrected by a model fitted without them.

    The QCs are split into ``n_folds`` folds stratified by batch; for each fold ``method``
    (``"qc_rsc"`` or ``"serrf"``) is fitted on the other QCs and corrects the held-out
    ones; the per-feature RSD (100 · sd / mean, ddof 1) is computed over all QCs, each as
    corrected while held out. Returns ``{"median_qc_rsd": …, "rsd": per-feature array,
    "n_folds": K}``.

    Raises:
        InputValidationError: a fold would leave a batch with too few QCs to fit.
    """
    if method not in CORRECTIONS:
        raise ValueError(f"unknown baseline {method!r}; known: {sorted(CORRECTIONS)}")
    parameter = parameter or method
    config = CONFIGS[method].from_params(config, parameter) if not isinstance(config, tuple(CONFIGS.values())) else config
    values, is_qc, batches, order = _inputs(values, is_qc, batches, order)
    check_qc_per_batch(is_qc, batches, config.min_qc_per_batch, parameter, n_folds)
    folds = qc_folds(is_qc, batches, n_folds, seed)
    held_out = np.full_like(values, np.nan)
    for fold in range(n_folds):
        test = folds == fold
        corrected = CORRECTIONS[method](values, is_qc, batches, order, config, fit_mask=is_qc & ~test,
                                        parameter=parameter)  # fmt: skip
        held_out[test] = corrected[test]
    qc = held_out[is_qc]
    with np.errstate(divide="ignore", invalid="ignore"):
        rsd = 100.0 * qc.std(axis=0, ddof=1) / np.abs(qc.mean(axis=0))
    return {"median_qc_rsd": float(np.median(rsd[np.isfinite(rsd)])), "rsd": rsd, "n_folds": n_folds}
