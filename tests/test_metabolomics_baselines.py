"""QC-RSC and SERRF, the QC-based baselines NormAE is compared with: on a known
multiplicative drift along injection order (different in every batch) both bring the QC
RSD far below the uncorrected one and near the noise; QCs left out of the fit come out
worse than the fitted ones (in-sample is optimistic); deterministic for a seed; too few
QCs in a batch is an error naming the parameter; the log-standardised scores."""

from __future__ import annotations

import numpy as np
import pytest

from omicsgen.metrics.metabolomics import correction_metrics, log_standardise, median_qc_rsd
from omicsgen.models.baselines.metabolomics import (
    QCRSCConfig,
    SERRFConfig,
    cross_validated_qc_rsd,
    qc_rsc,
    serrf,
)
from omicsgen.preprocessing.validate import InputValidationError

NOISE = 0.03  # 3% multiplicative noise: the QC RSD a perfect correction leaves
SERRF_FAST = SERRFConfig(n_estimators=30)


def drifted_run(n_features=60, n_batches=3, per_batch=40, qc_every=5, seed=0):
    """Samples × features intensities: feature level × class effect × batch factor ×
    smooth drift along injection order (exp of a per-batch, per-feature quadratic) ×
    log-normal noise; a QC every ``qc_every`` injections from the first one."""
    rng = np.random.default_rng(seed)
    level = np.exp(rng.normal(10, 1, n_features))
    rows, qc, batches, order = [], [], [], []
    for b in range(n_batches):
        t = np.linspace(-1, 1, per_batch)
        slope, curve = rng.normal(0, 0.4, n_features), rng.normal(0, 0.3, n_features)
        drift = np.exp(slope[None, :] * t[:, None] + curve[None, :] * t[:, None] ** 2) * np.exp(rng.normal(0, 0.3, n_features))
        is_qc = np.arange(per_batch) % qc_every == 0
        biology = np.where(is_qc[:, None], 1.0, np.exp(rng.normal(0, 0.3, (per_batch, n_features))))
        noise = np.exp(rng.normal(0, NOISE, (per_batch, n_features)))
        rows.append(level * biology * drift * noise)
        qc.append(is_qc)
        batches += [str(b + 1)] * per_batch
        order.append(b * per_batch + np.arange(per_batch) + 1)
    return np.vstack(rows), np.concatenate(qc), np.array(batches), np.concatenate(order).astype(float)


@pytest.fixture(scope="module")
def run():
    return drifted_run()


@pytest.mark.parametrize(("method", "config"), [(qc_rsc, None), (serrf, SERRF_FAST)])
def test_a_known_drift_is_removed_from_the_qcs(run, method, config):
    values, is_qc, batches, order = run
    before = median_qc_rsd(values, is_qc)
    after = median_qc_rsd(method(values, is_qc, batches, order, config), is_qc)
    assert before > 25  # drift and batch factors: 34 % RSD
    # noise is 3 %: measured 2.8 % (QC-RSC, overfits the noise a little) and 7.0 % (SERRF:
    # 8 QCs per batch, nodes under 5 not split — a coarse step function of the drift)
    assert after < 8 and after < before / 4
    corrected = method(values, is_qc, batches, order, config)
    assert corrected.shape == values.shape and np.all(corrected > 0)
    # rescaled to the QC median of each feature: the level is kept
    np.testing.assert_allclose(np.median(corrected[is_qc], axis=0), np.median(values[is_qc], axis=0), rtol=0.1)


@pytest.mark.parametrize(("name", "method", "config"), [("qc_rsc", qc_rsc, None), ("serrf", serrf, SERRF_FAST)])
def test_qcs_left_out_are_worse_than_fitted_ones_but_still_corrected(run, name, method, config):
    values, is_qc, batches, order = run
    in_sample = median_qc_rsd(method(values, is_qc, batches, order, config), is_qc)
    cv = cross_validated_qc_rsd(name, values, is_qc, batches, order, config, n_folds=4, seed=0)
    assert cv["n_folds"] == 4 and cv["rsd"].shape == (values.shape[1],)
    assert cv["median_qc_rsd"] >= in_sample
    # measured 10.7 % (QC-RSC) and 15.7 % (SERRF) vs 34 %: a held-out first or last QC of a
    # batch is an extrapolation, and 6 QCs per batch are left to fit
    assert cv["median_qc_rsd"] < 0.6 * median_qc_rsd(values, is_qc)


def test_deterministic_for_a_seed(run):
    values, is_qc, batches, order = run
    first = serrf(values, is_qc, batches, order, SERRF_FAST)
    np.testing.assert_array_equal(first, serrf(values, is_qc, batches, order, SERRF_FAST))
    other = serrf(values, is_qc, batches, order, SERRFConfig(n_estimators=30, seed=1))
    assert not np.array_equal(first, other)
    np.testing.assert_array_equal(qc_rsc(values, is_qc, batches, order), qc_rsc(values, is_qc, batches, order))


def test_qcs_left_out_of_the_fit_do_not_change_it(run):
    """fit_mask: a QC outside it is corrected, never fitted — moving it changes only itself."""
    values, is_qc, batches, order = run
    held = np.flatnonzero(is_qc)[3]
    fit = is_qc.copy()
    fit[held] = False
    moved = values.copy()
    moved[held] *= 5
    for method, config in ((qc_rsc, None), (serrf, SERRF_FAST)):
        a = method(values, is_qc, batches, order, config, fit_mask=fit)
        b = method(moved, is_qc, batches, order, config, fit_mask=fit)
        others = np.arange(len(values)) != held
        np.testing.assert_allclose(a[others], b[others], rtol=1e-9)


def test_a_linear_drift_is_followed_exactly_without_noise():
    """QC-RSC on a noise-free exponential drift (linear in log2): corrected QCs identical."""
    order = np.arange(1.0, 31.0)
    is_qc = np.arange(30) % 3 == 0
    values = (100.0 * 2 ** (order / 10))[:, None] * np.array([1.0, 3.0])
    corrected = qc_rsc(values, is_qc, np.ones(30), order)
    assert median_qc_rsd(corrected, is_qc) < 1e-6
    # every sample within the QCs' range lies on the trend: all equal to the QC median
    median = np.median(values[is_qc], axis=0)
    np.testing.assert_allclose(corrected[:28], median[None, :].repeat(28, 0), rtol=1e-6)
    # after the last QC (order 28) the trend is held, not extrapolated
    np.testing.assert_allclose(corrected[28:], values[28:] / values[27] * median, rtol=1e-6)


def test_too_few_qcs_in_a_batch_names_the_parameter(run):
    values, is_qc, batches, order = run
    few = is_qc.copy()
    few[np.flatnonzero(is_qc & (batches == "2"))[2:]] = False  # batch 2 keeps 2 QCs
    with pytest.raises(InputValidationError, match=r"batch\(es\) '2'.*normae\.baselines\.qc_rsc\.min_qc_per_batch is 3"):
        qc_rsc(values, few, batches, order, parameter="normae.baselines.qc_rsc")
    with pytest.raises(InputValidationError, match=r"have 8, 8, 8 QC sample\(s\); serrf\.min_qc_per_batch is 9"):
        serrf(values, is_qc, batches, order, {"min_qc_per_batch": 9})
    # 8 QCs per batch, 2 folds: 4 stay to fit, fewer than 5
    with pytest.raises(InputValidationError, match=r"leaving out one of 2 folds.*min_qc_per_batch = 5"):
        cross_validated_qc_rsd("qc_rsc", values, is_qc, batches, order, QCRSCConfig(min_qc_per_batch=5), n_folds=2)
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['trees'\]"):
        serrf(values, is_qc, batches, order, {"trees": 10})


def test_log_standardised_scores():
    values = np.array([[0.0, 1.0], [1.0, 3.0], [3.0, 7.0], [-2.0, 15.0]])
    logged = log_standardise(values)
    expected = np.log2(np.array([[0, 1], [1, 3], [3, 7], [0, 15]], dtype=float) + 1)
    expected = (expected - expected.mean(0)) / expected.std(0)
    np.testing.assert_allclose(logged, expected)
    np.testing.assert_allclose(log_standardise(expected, "log"), expected)  # log input: only standardised

    values, is_qc, batches, _ = drifted_run(n_features=30, n_batches=3, per_batch=20, seed=2)
    classes = np.where(is_qc, "QC", np.where(np.arange(len(values)) % 2, "a", "b"))
    scores = correction_metrics(values, is_qc, batches, classes, None, n_folds=3, log_standardised=True)
    assert {"qc_pca_distance_log_standardised", "batch_accuracy_log_standardised"} <= set(scores)
    assert scores["batch_accuracy_log_standardised"] > 0.6  # three batches, strong batch factors
    assert scores["qc_pca_distance_log_standardised"] > 0
