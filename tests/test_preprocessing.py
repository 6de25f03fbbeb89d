"""Preprocessing functions on small real and simulated data, with assertions on values."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from omicsgen import preprocessing as pp
from omicsgen.preprocessing import InputValidationError


@pytest.fixture
def counts(simulated_counts) -> ad.AnnData:
    adata = simulated_counts.copy()
    adata.uns["source_file"] = "data/01_raw/sim.h5ad"
    return adata


# --- validation -------------------------------------------------------------------------


def test_validation_passes_on_shipped_kang(kang):
    out = pp.validate_single_cell(
        kang, required_obs=["condition", "cell_type"], min_categories={"condition": 2}, counts_layer="counts"
    )
    assert out is kang


def test_missing_obs_column_names_file_and_column(counts):
    with pytest.raises(InputValidationError, match=r"data/01_raw/sim.h5ad.*'donor'.*missing"):
        pp.validate_single_cell(counts, required_obs=["cell_type", "donor"])


def test_nan_in_x_names_the_cell(counts):
    bad = counts.copy()
    X = bad.X.toarray()
    X[5, 3] = np.nan
    bad.X = sp.csr_matrix(X)
    with pytest.raises(InputValidationError, match=r"sim.h5ad: X has 1 NaN/inf values, in cells 'cell_5'"):
        pp.validate_single_cell(bad)


def test_inf_in_dense_x_is_rejected(counts):
    bad = counts.copy()
    bad.X = bad.X.toarray()
    bad.X[2, 1] = np.inf
    with pytest.raises(InputValidationError, match="'cell_2'"):
        pp.validate_single_cell(bad)


def test_negative_counts_named(counts):
    bad = counts.copy()
    layer = bad.layers["counts"].toarray()
    layer[7, 0] = -3
    bad.layers["counts"] = sp.csr_matrix(layer)
    with pytest.raises(InputValidationError, match=r"layers\['counts'\].*negative values \(min -3\).*'cell_7'"):
        pp.validate_single_cell(bad, counts_layer="counts")


def test_non_integer_counts_named(counts):
    bad = counts.copy()
    bad.layers["counts"] = bad.layers["counts"] * 0.5
    with pytest.raises(InputValidationError, match="non-integer"):
        pp.validate_single_cell(bad, counts_layer="counts")


def test_single_batch_rejected(counts):
    bad = counts[counts.obs["batch"] == "batch_0"].copy()
    with pytest.raises(InputValidationError, match=r"'batch' needs at least 2 distinct values, found 1: 'batch_0'"):
        pp.validate_single_cell(bad, required_obs=["batch"], min_categories={"batch": 2})


def test_missing_counts_layer(counts):
    bad = counts.copy()
    del bad.layers["counts"]
    with pytest.raises(InputValidationError, match="counts layer 'counts' missing"):
        pp.validate_single_cell(bad, counts_layer="counts")


def test_missing_values_in_obs_column(counts):
    bad = counts.copy()
    bad.obs["cell_type"] = bad.obs["cell_type"].astype(object)
    bad.obs.iloc[4, bad.obs.columns.get_loc("cell_type")] = None
    with pytest.raises(InputValidationError, match=r"'cell_type' has missing values for cells 'cell_4'"):
        pp.validate_single_cell(bad, required_obs=["cell_type"])


# --- expression ---------------------------------------------------------------------------


def test_normalised_cell_sums_to_target_before_log(counts):
    out = pp.normalise_expression(counts, target_sum=1e4)
    per_cell = np.expm1(out.X.toarray()).sum(axis=1)
    np.testing.assert_allclose(per_cell, 1e4, rtol=1e-4)
    np.testing.assert_array_equal(out.layers["counts"].toarray(), counts.X.toarray())
    assert out.uns["normalisation"]["source"] == "counts"
    assert "log1p" not in counts.uns, "input must not be modified"


def test_log_normalised_data_is_not_logged_twice(kang):
    assert pp.detect_expression_scale(kang) == "log_normalised"
    out = pp.normalise_expression(kang)
    np.testing.assert_array_equal(out.X.toarray(), kang.X.toarray())
    # and normalising our own output again is a no-op too
    twice = pp.normalise_expression(pp.normalise_expression(kang))
    np.testing.assert_array_equal(twice.X.toarray(), kang.X.toarray())


def test_normalise_rejects_scaled_data(counts):
    scaled = counts.copy()
    scaled.X = scaled.X.toarray() - 5.0
    del scaled.layers["counts"]  # no counts to start again from
    with pytest.raises(InputValidationError, match="neither counts nor log-normalised"):
        pp.normalise_expression(scaled)


def test_normalise_restarts_from_the_counts_layer_when_x_is_scaled(counts):
    scaled = counts.copy()
    scaled.X = scaled.X.toarray() - 5.0
    out = pp.normalise_expression(scaled, target_sum=1e4)
    np.testing.assert_allclose(np.expm1(out.X.toarray()).sum(axis=1), 1e4, rtol=1e-4)
    np.testing.assert_array_equal(out.layers["counts"].toarray(), counts.layers["counts"].toarray())
    assert out.uns["normalisation"]["source"] == "counts"


def test_qc_filter_thresholds(counts):
    expressed = counts.X.toarray() > 0
    kept_cells = expressed.sum(axis=1) >= 150
    # genes are filtered after cells, on the remaining cells
    kept_genes = expressed[kept_cells].sum(axis=0) >= 300
    out = pp.filter_cells_and_genes(counts, min_genes=150, min_cells=300)
    assert 0 < out.n_obs == kept_cells.sum() < counts.n_obs
    assert 0 < out.n_vars == kept_genes.sum() < counts.n_vars
    assert list(out.var_names) == list(counts.var_names[kept_genes])


def test_hvg_marks_requested_number(counts):
    normalised = pp.normalise_expression(counts)
    out = pp.select_highly_variable_genes(normalised, n_top_genes=50, subset=False)
    # scanpy's seurat flavour keeps genes tied at the cut-off
    assert 50 <= out.var["highly_variable"].sum() <= 52 and out.n_vars == counts.n_vars
    subset = pp.select_highly_variable_genes(normalised, n_top_genes=50, subset=True)
    assert subset.n_vars == out.var["highly_variable"].sum()
    keep_all = pp.select_highly_variable_genes(normalised, n_top_genes=None)
    assert keep_all.var["highly_variable"].all()


def test_balanced_dataset_has_equal_counts_per_cell_type(kang):
    out = pp.balance_by_cell_type(kang, seed=1)
    sizes = out.obs["cell_type"].value_counts()
    assert sizes.nunique() == 1 and sizes.iloc[0] == kang.obs["cell_type"].value_counts().max()
    assert out.obs_names.is_unique
    assert set(out.obs["original_cell"]) <= set(kang.obs_names)
    again = pp.balance_by_cell_type(kang, seed=1)
    assert list(again.obs_names) == list(out.obs_names)


def test_split_is_stratified_and_seeded(kang):
    out = pp.split_train_validation(kang, validation_fraction=0.2, stratify_key="cell_type", seed=0)
    fractions = out.obs.groupby("cell_type", observed=True)["split"].apply(lambda s: (s == "validation").mean())
    assert fractions.between(0.17, 0.23).all()
    again = pp.split_train_validation(kang, validation_fraction=0.2, stratify_key="cell_type", seed=0)
    assert (again.obs["split"] == out.obs["split"]).all()


def test_subsample_keeps_every_group(kang):
    out = pp.subsample_cells(kang, max_cells=200, stratify_key="cell_type", seed=0)
    assert 190 <= out.n_obs <= 215
    assert set(out.obs["cell_type"]) == set(kang.obs["cell_type"])


def test_hold_out_condition(kang):
    train, held = pp.hold_out_condition(kang, cell_type="CD4T", condition="stimulated")
    assert set(held.obs["cell_type"]) == {"CD4T"} and set(held.obs["condition"]) == {"stimulated"}
    assert train.n_obs + held.n_obs == kang.n_obs
    assert not ((train.obs["cell_type"] == "CD4T") & (train.obs["condition"] == "stimulated")).any()
    with pytest.raises(InputValidationError, match=r"cell type 'Neuron' not found in obs column 'cell_type'"):
        pp.hold_out_condition(kang, cell_type="Neuron", condition="stimulated")


# --- metabolomics -------------------------------------------------------------------------


@pytest.fixture
def tables():
    data, info = pp.simulate_metabolomics(n_features=40, n_batches=2, samples_per_batch=12, seed=1)
    data.attrs["source_file"] = "data.csv"
    info.attrs["source_file"] = "info.csv"
    return data, info


def test_metabolomics_table_to_anndata(tables):
    data, info = tables
    adata = pp.metabolomics_to_anndata(data, info)
    assert adata.shape == (len(info), len(data))
    assert adata.obs["is_qc"].sum() == (info["class"] == "QC").sum()
    assert list(adata.obs_names) == list(info["sample_id"])
    np.testing.assert_allclose(adata.X[:, 0], data.iloc[0, 1:].astype(float).to_numpy())


def test_shipped_mtbls79_loads():
    from tests.conftest import RAW_DATA

    data = pd.read_csv(RAW_DATA / "mtbls79" / "data.csv")
    info = pd.read_csv(RAW_DATA / "mtbls79" / "info.csv")
    adata = pp.metabolomics_to_anndata(data, info)
    assert adata.shape == (172, 2488)
    assert adata.obs["batch"].nunique() == 8 and adata.obs["is_qc"].sum() == 38
    assert 0.03 < np.isnan(adata.X).mean() < 0.06


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d, i: (d, i.iloc[1:]), r"data.csv: samples 'b01_0001_QC' have no row in info.csv"),
        (lambda d, i: (d.drop(columns=[d.columns[2]]), i), r"info.csv: samples 'b01_0002_\w+'.*have no column in data.csv"),
        (lambda d, i: (d, i.assign(**{"class": i["class"].replace("QC", "pool")})), r"info.csv: no QC samples: column 'class'"),
        (lambda d, i: (d, i.assign(batch=1)), r"info.csv: one batch only in column 'batch'"),
        (lambda d, i: (d.astype({d.columns[3]: object}).pipe(lambda x: x.__setitem__((x.columns[3]), ["oops"] + list(x.iloc[1:, 3])) or x), i), r"data.csv: 1 non-numeric intensities.*'oops'"),
        (lambda d, i: (d.assign(**{c: (np.nan if c != "feature" else d[c]) for c in d.columns[1:]}).iloc[:1].pipe(lambda x: pd.concat([x, d.iloc[1:]])), i), r"data.csv: features 'feature_0000' have no value in any sample"),
        (lambda d, i: (d, i.drop(columns=["injection_order"])), r"info.csv: required column\(s\) 'injection_order' missing"),
    ],
    ids=["sample-missing-in-info", "sample-missing-in-data", "no-qc", "one-batch", "non-numeric", "empty-feature", "no-order-column"],
)
def test_metabolomics_bad_input(tables, mutate, message):
    data, info = mutate(*(t.copy() for t in tables))
    data.attrs["source_file"], info.attrs["source_file"] = "data.csv", "info.csv"
    with pytest.raises(InputValidationError, match=message):
        pp.metabolomics_to_anndata(data, info)


def test_feature_filter_imputation_and_scaling_invert_exactly(tables):
    adata = pp.metabolomics_to_anndata(*tables)
    adata.X[:, 0] = np.nan
    adata.X[0, 0] = 5.0  # feature 0 missing in all but one sample → dropped
    missing = np.isnan(adata.X)
    too_sparse = (missing.mean(axis=0) > 0.5) | (missing[adata.obs["is_qc"].to_numpy()].mean(axis=0) > 0.5)
    filtered = pp.filter_features(adata, max_missing_fraction=0.5, max_missing_fraction_qc=0.5)
    assert list(filtered.var_names) == list(adata.var_names[~too_sparse])
    assert "feature_0000" not in filtered.var_names
    imputed = pp.impute_half_minimum(filtered)
    assert not np.isnan(imputed.X).any()
    column = filtered.X[:, np.isnan(filtered.X).any(axis=0)][:, 0]
    filled = imputed.X[:, np.isnan(filtered.X).any(axis=0)][:, 0]
    np.testing.assert_allclose(filled[np.isnan(column)], np.nanmin(column) / 2)
    for log in (False, True):
        scaled = pp.scale_features(imputed, log=log)
        np.testing.assert_allclose(scaled.X.mean(axis=0), 0, atol=1e-9)
        np.testing.assert_allclose(scaled.X.std(axis=0), 1, atol=1e-9)
        np.testing.assert_allclose(pp.restore_original_scale(scaled.X, scaled), imputed.layers["intensity"], rtol=1e-9)
