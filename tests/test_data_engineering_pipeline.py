"""The data-engineering pipeline run for real (KedroSession, test environment)."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from omicsgen.pipeline_registry import register_pipelines
from omicsgen.pipelines.data_engineering import DATASETS
from tests.conftest import run_kedro

LAYERS = ("02_intermediate", "03_primary", "05_model_input")


def _written(project: Path, dataset: str) -> list[Path]:
    return sorted(p for layer in LAYERS for p in (project / "data" / layer / dataset).glob("*"))


def test_registry_offers_the_documented_pipelines():
    pipelines = register_pipelines()
    assert {"data_engineering", "modelling", "reporting", "__default__"} <= set(pipelines)
    names = {n.name for n in pipelines["data_engineering"].nodes}
    for dataset in DATASETS:
        assert f"{dataset}.validate" in names or f"{dataset}.validate_and_join_tables" in names
    assert set(pipelines["data_engineering"].nodes) <= set(pipelines["__default__"].nodes)


def test_data_engineering_end_to_end(kedro_project_copy):
    project = kedro_project_copy
    run_kedro(project, pipeline_names=["data_engineering"])
    for dataset in DATASETS:
        assert (project / "data" / "05_model_input" / dataset / "model_input.h5ad").is_file()

    kang = ad.read_h5ad(project / "data" / "05_model_input" / "kang" / "model_input.h5ad")
    # conf/test subsamples to ~400 cells, keeping every cell type
    assert 380 <= kang.n_obs <= 420 and kang.obs["cell_type"].nunique() == 7
    assert set(kang.obs["split"]) == {"train", "validation"}
    assert "counts" in kang.layers and kang.uns["normalisation"]["source"] == "input"

    balanced = ad.read_h5ad(project / "data" / "05_model_input" / "kang" / "balanced.h5ad")
    assert balanced.obs["cell_type"].value_counts().nunique() == 1

    held = ad.read_h5ad(project / "data" / "05_model_input" / "kang" / "perturbation_holdout.h5ad")
    train = ad.read_h5ad(project / "data" / "05_model_input" / "kang" / "perturbation_train.h5ad")
    assert set(held.obs["cell_type"]) == {"CD4T"} and set(held.obs["condition"]) == {"stimulated"}
    assert held.n_obs + train.n_obs == kang.n_obs

    pbmc = ad.read_h5ad(project / "data" / "05_model_input" / "pbmc_batches" / "model_input.h5ad")
    assert pbmc.obs["batch"].nunique() == 3 and pbmc.var["highly_variable"].any()

    mtbls = ad.read_h5ad(project / "data" / "05_model_input" / "mtbls79" / "model_input.h5ad")
    assert mtbls.n_obs == 172 and mtbls.obs["is_qc"].sum() == 38
    np.testing.assert_allclose(mtbls.X.mean(axis=0), 0, atol=1e-8)
    primary = ad.read_h5ad(project / "data" / "03_primary" / "mtbls79" / "primary.h5ad")
    assert not np.isnan(primary.X).any()


def test_partial_run_by_namespace(kedro_project_copy):
    project = kedro_project_copy
    run_kedro(project, pipeline_names=["data_engineering"], namespaces=["pbmc_batches"])
    assert _written(project, "pbmc_batches")
    assert not _written(project, "kang") and not _written(project, "mtbls79")


def _drop_obs_column(path: Path) -> None:
    adata = ad.read_h5ad(path)
    del adata.obs["condition"]
    adata.write_h5ad(path)


def _nan_in_x(path: Path) -> None:
    adata = ad.read_h5ad(path)
    X = adata.X.toarray()
    X[3, 10] = np.nan
    adata.X = X
    adata.write_h5ad(path)


def _negative_counts(path: Path) -> None:
    adata = ad.read_h5ad(path)
    counts = adata.layers["counts"].toarray()
    counts[0, 0] = -1
    adata.layers["counts"] = counts
    adata.write_h5ad(path)


def _one_condition(path: Path) -> None:
    adata = ad.read_h5ad(path)
    adata = adata[adata.obs["condition"] == "control"].copy()
    adata.write_h5ad(path)


def _corrupt(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:5000])


@pytest.mark.parametrize(
    ("break_file", "message"),
    [
        (_drop_obs_column, r"kang_pbmc_ifnb.h5ad: required obs column\(s\) 'condition' missing"),
        (_nan_in_x, r"kang_pbmc_ifnb.h5ad: X has 1 NaN/inf values, in cells"),
        (_negative_counts, r"kang_pbmc_ifnb.h5ad: layers\['counts'\] must hold counts but has negative values"),
        (_one_condition, r"kang_pbmc_ifnb.h5ad: obs column 'condition' needs at least 2 distinct values, found 1: 'control'"),
        (_corrupt, r"kang_pbmc_ifnb.h5ad.*corrupt, truncated"),
    ],
    ids=["missing-column", "nan", "negative-counts", "single-condition", "corrupt-file"],
)
def test_bad_input_stops_the_run_and_writes_nothing(kedro_project_copy, break_file, message):
    project = kedro_project_copy
    break_file(project / "data" / "01_raw" / "kang_pbmc_ifnb" / "kang_pbmc_ifnb.h5ad")
    with pytest.raises(Exception, match=message):
        run_kedro(project, pipeline_names=["data_engineering"], namespaces=["kang"])
    assert not _written(project, "kang")


def test_bad_metabolomics_table_names_sample(kedro_project_copy):
    project = kedro_project_copy
    info_path = project / "data" / "01_raw" / "mtbls79" / "info.csv"
    info = pd.read_csv(info_path)
    info.iloc[1:].to_csv(info_path, index=False)
    with pytest.raises(Exception, match=r"data.csv: samples 'batch01_QC01' have no row in .*info.csv"):
        run_kedro(project, pipeline_names=["data_engineering"], namespaces=["mtbls79"])
    assert not _written(project, "mtbls79")
