"""Public metabolomics sets: duplicated feature names, log-scale intensities, QC RSD on
log values, and metrics without two biological classes (real MTBLS79 data throughout)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from omicsgen import preprocessing as pp
from omicsgen.metrics import metabolomics as metrics
from omicsgen.pipelines.modelling.normae.nodes import CORRECTED, ORIGINAL
from omicsgen.pipelines.reporting.normae import nodes as reporting
from omicsgen.preprocessing.validate import InputValidationError
from tests.conftest import RAW_DATA

SHARED = Path("/work/shared/data")
REAL_FILES = [
    RAW_DATA / "mtbls79" / "data.csv",
    SHARED / "mtbls79_dims" / "data.csv",
    SHARED / "metnormalizer_lcms_demo" / "data.csv",
]
DATA_FILE = "data/01_raw/mtbls79/data.csv"
INFO_FILE = "data/01_raw/mtbls79/info.csv"


@pytest.fixture(scope="module")
def mtbls79():
    data = pd.read_csv(RAW_DATA / "mtbls79" / "data.csv")
    info = pd.read_csv(RAW_DATA / "mtbls79" / "info.csv")
    return data, info


def tables(data: pd.DataFrame, info: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fresh copies that know the file they came from."""
    data, info = data.copy(), info.copy()
    data.attrs["source_file"], info.attrs["source_file"] = DATA_FILE, INFO_FILE
    return data, info


def log_table(data: pd.DataFrame, log=np.log2) -> pd.DataFrame:
    out = data.copy()
    out.iloc[:, 1:] = log(out.iloc[:, 1:].to_numpy(dtype=float))
    return out


def remove_at_random(data: pd.DataFrame, fraction: float = 0.45, seed: int = 0) -> pd.DataFrame:
    out = data.copy()
    values = out.iloc[:, 1:].to_numpy(dtype=float)
    values[np.random.default_rng(seed).random(values.shape) < fraction] = np.nan
    out.iloc[:, 1:] = values
    return out


# ------------------------------------------------------------------ duplicated feature names
@pytest.fixture(scope="module")
def duplicated(mtbls79):
    """Three real MTBLS79 features (complete ones) all named like the first, plus a fourth;
    cells set to make every case of 'sum' appear (missing in one, in all, a zero)."""
    data, info = mtbls79
    rows = data[data.iloc[:, 1:].notna().all(axis=1)].iloc[:4].copy()
    name = rows.iloc[0, 0]
    rows.iloc[1, 0] = rows.iloc[2, 0] = name
    samples = rows.columns[1:]
    rows.loc[rows.index[0], samples[0]] = np.nan  # missing in the first duplicate only
    rows.loc[rows.index[:3], samples[1]] = np.nan  # missing in all three → stays missing
    rows.loc[rows.index[1], samples[2]] = 0.0  # a zero: missing on the intensity scale
    return rows, info, name


def test_duplicates_error_names_file_features_and_parameter(duplicated):
    data, info, name = duplicated
    with pytest.raises(InputValidationError) as error:
        pp.metabolomics_to_anndata(*tables(data, info))
    message = str(error.value)
    assert message.startswith(f"{DATA_FILE}: duplicated feature names {name!r} (2 repeated rows)")
    assert "set the dataset's preprocessing.duplicates to one of make_unique|sum|first" in message
    with pytest.raises(ValueError, match=r"duplicates must be one of error\|make_unique\|sum\|first"):
        pp.metabolomics_to_anndata(*tables(data, info), duplicates="mean")


def test_duplicates_make_unique_like_anndata(duplicated):
    data, info, name = duplicated
    adata = pp.metabolomics_to_anndata(*tables(data, info), duplicates="make_unique")
    assert list(adata.var_names) == [name, f"{name}-1", f"{name}-2", data.iloc[3, 0]]
    expected = data.iloc[:, 1:].to_numpy(dtype=float).T
    expected[expected == 0] = np.nan
    np.testing.assert_array_equal(adata.X, expected)
    assert adata.uns["duplicates"] == {"policy": "make_unique", "n_duplicated": 2}


def test_duplicates_sum_treats_missing_as_zero_but_all_missing_stays_missing(duplicated):
    data, info, name = duplicated
    adata = pp.metabolomics_to_anndata(*tables(data, info), duplicates="sum")
    assert list(adata.var_names) == [name, data.iloc[3, 0]]
    rows = data.iloc[:3, 1:].to_numpy(dtype=float)
    summed = adata[:, name].X.ravel()
    assert np.isnan(summed[1])  # missing in all three duplicates
    assert summed[0] == pytest.approx(rows[1, 0] + rows[2, 0], rel=1e-12)  # first one missing
    assert summed[2] == pytest.approx(rows[0, 2] + rows[2, 2], rel=1e-12)  # zero counts as 0
    np.testing.assert_allclose(summed[3:], rows[:, 3:].sum(axis=0), rtol=1e-12)
    np.testing.assert_array_equal(adata[:, data.iloc[3, 0]].X.ravel(), data.iloc[3, 1:].to_numpy(dtype=float))
    assert adata.uns["duplicates"] == {"policy": "sum", "n_duplicated": 2}


def test_duplicates_first_keeps_the_first_row(duplicated):
    data, info, name = duplicated
    adata = pp.metabolomics_to_anndata(*tables(data, info), duplicates="first")
    assert list(adata.var_names) == [name, data.iloc[3, 0]]
    np.testing.assert_array_equal(adata[:, name].X.ravel(), data.iloc[0, 1:].to_numpy(dtype=float))
    assert adata.uns["duplicates"] == {"policy": "first", "n_duplicated": 2}


def test_duplicates_sum_refuses_log_values(duplicated):
    data, info, _ = duplicated
    logged = log_table(data.replace(0.0, 1.0))
    with pytest.raises(InputValidationError, match=r"duplicates='sum' on log-scale values.*make_unique or first"):
        pp.metabolomics_to_anndata(*tables(logged, info), duplicates="sum")


def test_no_duplicates_recorded_as_zero(mtbls79):
    adata = pp.metabolomics_to_anndata(*tables(*mtbls79))
    assert adata.uns["duplicates"] == {"policy": "error", "n_duplicated": 0}
    assert adata.uns["input_scale"] == "intensity"


# ------------------------------------------------------------------ scale detection
@pytest.fixture(scope="module", params=REAL_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def real_values(request):
    if not request.param.exists():
        pytest.skip(f"{request.param} not available")
    return pd.read_csv(request.param).iloc[:, 1:].to_numpy(dtype=float)


@pytest.mark.parametrize(
    ("transform", "scale"),
    [
        (lambda x: x, "intensity"),
        (lambda x: x / np.nanmedian(x), "intensity"),  # rescaled intensities: still log-normal
        (np.log2, "log"),
        (np.log10, "log"),
        (np.log, "log"),
        (lambda x: np.log2(x / np.nanmedian(x)), "log"),  # centred: negative log values
    ],
    ids=["as-shipped", "divided-by-median", "log2", "log10", "ln", "log2-centred"],
)
def test_scale_detection_on_real_files(real_values, transform, scale):
    values = transform(real_values)
    assert pp.detect_intensity_scale(values) == scale
    # 45% of the values missing at random
    thinned = values.copy()
    thinned[np.random.default_rng(1).random(values.shape) < 0.45] = np.nan
    assert pp.detect_intensity_scale(thinned) == scale
    # the lowest 45% missing (left-censored, the usual pattern of non-detections)
    censored = np.where(values < np.nanquantile(values, 0.45), np.nan, values)
    assert pp.detect_intensity_scale(censored) == scale


def test_scale_detection_edge_cases():
    assert pp.detect_intensity_scale(np.full((3, 3), np.nan)) == "intensity"
    assert pp.detect_intensity_scale(np.array([[0.0, 0.0], [np.nan, 41.0]])) == "intensity"


# ------------------------------------------------------------------ log-scale input
@pytest.fixture(scope="module")
def log_input(mtbls79):
    """MTBLS79 as log2 with 45% of the values removed at random, some exact zeros and
    some negative log values (a few intensities divided by 1e5)."""
    data, info = mtbls79
    logged = remove_at_random(log_table(data), 0.45, seed=2)
    logged.iloc[0, 1:4] = 0.0
    logged.iloc[1, 1:3] = np.log2(data.iloc[1, 1:3].to_numpy(dtype=float) / 1e5)
    assert (logged.iloc[1, 1:3] < 0).all()
    return logged, info


def test_log_input_detected_zeros_kept_negatives_allowed(log_input, caplog):
    data, info = log_input
    with caplog.at_level(logging.WARNING, logger="omicsgen.preprocessing.metabolomics"):
        adata = pp.metabolomics_to_anndata(*tables(data, info))
    assert adata.uns["input_scale"] == "log"
    assert adata.uns["input_scale_detection"]["requested"] == "auto"
    assert "detected as log-scale" in caplog.text
    np.testing.assert_array_equal(adata.X[:3, 0], 0.0)  # on the log scale 0 is a value
    assert (adata.X[:2, 1] < 0).all()
    # missing: only what the table has empty (4.3% as shipped, then 45% removed)
    np.testing.assert_array_equal(np.isnan(adata.X), data.iloc[:, 1:].isna().to_numpy().T)
    assert 0.46 < np.isnan(adata.X).mean() < 0.49
    # the same table forced to the intensity scale: zeros missing, negatives an error
    with pytest.raises(InputValidationError, match=rf"{DATA_FILE}: negative intensities for features"):
        pp.metabolomics_to_anndata(*tables(data, info), input_scale="intensity")
    no_negatives = data.copy()
    no_negatives.iloc[1, 1:3] = 1.0
    forced = pp.metabolomics_to_anndata(*tables(no_negatives, info), input_scale="intensity")
    assert forced.uns["input_scale"] == "intensity" and np.isnan(forced.X[:3, 0]).all()


def test_negative_intensities_error_points_at_input_scale(mtbls79):
    data, info = tables(*mtbls79)
    data.iloc[5, 7] = -3.0
    with pytest.raises(InputValidationError, match=r"negative intensities.*preprocessing.input_scale to log"):
        pp.metabolomics_to_anndata(data, info)
    with pytest.raises(ValueError, match=r"input_scale must be one of auto\|log\|intensity"):
        pp.metabolomics_to_anndata(*tables(*mtbls79), input_scale="log10")


def test_log_input_imputed_with_feature_minimum_and_not_logged_again(log_input, caplog):
    data, info = log_input
    filtered = pp.filter_features(pp.metabolomics_to_anndata(*tables(data, info)), 0.6, 0.6)
    with caplog.at_level(logging.WARNING, logger="omicsgen.preprocessing.metabolomics"):
        imputed = pp.impute_half_minimum(filtered)
    missing = np.isnan(filtered.X)
    assert imputed.uns["imputation"] == {"method": "feature_minimum_log_scale", "n_imputed": int(missing.sum())}
    assert "imputed with the feature minimum on the log scale" in caplog.text
    minimum = np.broadcast_to(np.nanmin(filtered.X, axis=0), filtered.X.shape)
    np.testing.assert_array_equal(imputed.X[missing], minimum[missing])
    np.testing.assert_array_equal(imputed.X[~missing], filtered.X[~missing])

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="omicsgen.preprocessing.metabolomics"):
        scaled = pp.scale_features(imputed, log=True)
    assert "log=True skipped" in caplog.text
    assert scaled.uns["scaling"]["log"] is False and scaled.uns["scaling"]["standardised"]
    np.testing.assert_allclose(scaled.var["scale_mean"], imputed.X.mean(axis=0), rtol=1e-12)  # not log(log)
    np.testing.assert_allclose(pp.restore_original_scale(scaled.X, scaled), imputed.X, rtol=1e-9, atol=1e-9)


def test_intensity_input_unchanged(mtbls79):
    adata = pp.metabolomics_to_anndata(*tables(*mtbls79))
    imputed = pp.impute_half_minimum(pp.filter_features(adata))
    assert imputed.uns["imputation"]["method"] == "half_minimum"
    scaled = pp.scale_features(imputed, log=True)
    assert scaled.uns["scaling"] == {"log": True, "standardised": True}
    np.testing.assert_allclose(scaled.var["scale_mean"], np.log(imputed.X).mean(axis=0), rtol=1e-12)


# ------------------------------------------------------------------ QC RSD on log input
@pytest.fixture(scope="module")
def mtbls79_imputed(mtbls79):
    return pp.impute_half_minimum(pp.filter_features(pp.metabolomics_to_anndata(*tables(*mtbls79))))


def test_rsd_of_log2_input_equals_rsd_of_intensities(mtbls79_imputed):
    intensity = mtbls79_imputed.X
    is_qc = mtbls79_imputed.obs["is_qc"].to_numpy()
    reference = metrics.median_qc_rsd(intensity, is_qc)
    assert 10 < reference < 60  # a percentage, as published for MTBLS79 QCs
    from_log = metrics.median_qc_rsd(np.log2(intensity), is_qc, input_scale="log")
    assert from_log == pytest.approx(reference, rel=1e-9)
    np.testing.assert_allclose(
        metrics.qc_rsd(np.log2(intensity), is_qc, input_scale="log"), metrics.qc_rsd(intensity, is_qc), rtol=1e-9
    )
    # on the log values themselves the RSD would be a different, meaningless number
    assert metrics.median_qc_rsd(np.log2(intensity), is_qc) < reference / 5
    with pytest.raises(ValueError, match="input_scale must be one of intensity|log"):
        metrics.qc_rsd(intensity, is_qc, input_scale="log10")


# ------------------------------------------------------------------ metrics without two classes
SUBSET = 120  # features: keeps the cross-validated classifiers fast


def corrected_and_combat(imputed, classes=None, log=False):
    """What the reporting nodes get: layers on the original scale and a ComBat table."""
    sub = imputed[:, :SUBSET].copy()
    values = np.log2(sub.X) if log else sub.X.copy()
    sub.X = values
    sub.layers[ORIGINAL] = values
    sub.layers[CORRECTED] = values * np.random.default_rng(0).normal(1.0, 0.01, values.shape)
    sub.uns["input_scale"] = "log" if log else "intensity"
    sub.uns["normae"] = {"seed": 0}  # the correct node records the model's seed
    if classes is not None:
        sub.obs["class"] = np.where(sub.obs["is_qc"], "QC", classes(sub.obs["class"].astype(str)))
    combat = pd.DataFrame(values.T, index=sub.var_names, columns=sub.obs_names).rename_axis("feature").reset_index()
    return sub, combat


PARAMS = {
    "setup": {"batch_key": "batch", "order_key": "injection_order", "qc_key": "is_qc"},
    "metrics": {
        "class_column": "class",
        "class_labels": None,
        "pca_components": 3,
        "cv_folds": 3,
        "classifier_components": 5,
    },
}


def three_classes(classes: pd.Series) -> np.ndarray:
    return np.where(np.arange(len(classes)) % 3 == 0, "goat", classes)


def test_metrics_skip_class_separation_without_two_classes(mtbls79_imputed):
    corrected, combat = corrected_and_combat(mtbls79_imputed, classes=three_classes, log=True)
    assert reporting.biological_classes(corrected.obs, PARAMS["metrics"]) is None
    report = reporting.compute_metrics(corrected, combat, PARAMS)
    skipped = report["class_separation"]["skipped"]
    assert "class column 'class'" in skipped and "['cow', 'goat', 'sheep']" in skipped
    assert "normae.metrics.class_labels" in skipped
    assert report["class_labels"] is None
    assert "class_auc_within_0.02_of_uncorrected" not in report["targets_met"]
    for values in report["metrics"].values():
        assert set(values) == {"qc_pca_distance", "qc_correlation", "median_qc_rsd", "batch_accuracy"}
        assert all(np.isfinite(v) for v in values.values())
    # log2 input: the RSD is that of the intensities
    assert report["input_scale"] == "log"
    assert report["rsd_scale"] == "intensity (2**x, input was log-scale)"
    is_qc = corrected.obs["is_qc"].to_numpy()
    expected = metrics.median_qc_rsd(mtbls79_imputed.X[:, :SUBSET], is_qc)
    assert report["metrics"]["uncorrected"]["median_qc_rsd"] == pytest.approx(expected, rel=1e-9)

    one_class, combat = corrected_and_combat(mtbls79_imputed, classes=lambda c: np.full(len(c), "cow"))
    report = reporting.compute_metrics(one_class, combat, PARAMS)
    assert "has 1 non-QC class(es) ['cow']" in report["class_separation"]["skipped"]
    assert report["rsd_scale"] == "intensity"


def test_metrics_with_two_classes_keep_the_auc(mtbls79_imputed):
    corrected, combat = corrected_and_combat(mtbls79_imputed)
    assert reporting.biological_classes(corrected.obs, PARAMS["metrics"]) == ["cow", "sheep"]
    report = reporting.compute_metrics(corrected, combat, PARAMS)
    assert "class_separation" not in report and report["class_labels"] == ["cow", "sheep"]
    assert report["rsd_scale"] == "intensity"
    assert report["metrics"]["uncorrected"]["class_auc"] > 0.9  # cow vs sheep is easy
    assert "class_auc_within_0.02_of_uncorrected" in report["targets_met"]
    direct = metrics.correction_metrics(
        corrected.layers[ORIGINAL], corrected.obs["is_qc"], corrected.obs["batch"], corrected.obs["class"],
        class_labels=None, n_folds=3, classifier_components=5,
    )
    assert "class_auc" not in direct and direct["rsd_scale"] == "intensity"


def test_check_class_labels_before_training(mtbls79):
    info = mtbls79[1]
    assert metrics.check_class_labels(info, "class", None) is None
    assert metrics.check_class_labels(info, "class", ("sheep", "cow")) == ["sheep", "cow"]
    with pytest.raises(InputValidationError, match=r"normae.metrics.class_labels names 'goat', not found in column 'class' \(it has 'QC', 'cow', 'sheep'\)"):
        metrics.check_class_labels(info, "class", ["cow", "goat"])
    with pytest.raises(InputValidationError, match="must name two different classes"):
        metrics.check_class_labels(info, "class", ["cow"])
    with pytest.raises(InputValidationError, match="class column 'species' is missing"):
        metrics.check_class_labels(info, "species", ["cow", "sheep"])
    few = info.assign(**{"class": np.where(np.arange(len(info)) == 0, "goat", info["class"])})
    with pytest.raises(InputValidationError, match=r"class\(es\) 'goat' in column 'class' have fewer than 2 samples"):
        metrics.check_class_labels(few, "class", ["cow", "goat"])
