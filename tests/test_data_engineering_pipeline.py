"""The data-engineering pipeline run for real (KedroSession, test environment)."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import yaml

from omicsgen.pipeline_registry import register_pipelines
from omicsgen.pipelines.data_engineering.nodes import TEMPLATE_OF_KIND
from omicsgen.pipelines.methods import resolve_parameters
from omicsgen.pipelines.modelling.scgen import nodes as scgen_nodes
from omicsgen.preprocessing import balance_by_cell_type, hold_out_condition
from omicsgen.preprocessing.expression import resolve_held_out_types
from omicsgen.registry import read_parameters
from tests.conftest import project_registry, run_kedro

LAYERS = ("02_intermediate", "03_primary", "05_model_input")


def _engineered(project: Path) -> list[str]:
    """The declared datasets that get data engineering (sequences are read by the VAE itself)."""
    return [
        name for name, spec in project_registry(project).items()
        if TEMPLATE_OF_KIND[spec.kind] in ("single_cell", "metabolomics")
    ]  # fmt: skip


def _written(project: Path, dataset: str) -> list[Path]:
    return sorted(p for layer in LAYERS for p in (project / "data" / "test" / layer / dataset).glob("*"))


def test_registry_offers_the_documented_pipelines():
    datasets = _engineered(Path(__file__).resolve().parents[1])
    assert {"kang", "pbmc_batches", "mtbls79"} <= set(datasets)
    pipelines = register_pipelines()
    assert {"data_engineering", "modelling", "reporting", "__default__"} <= set(pipelines)
    names = {n.name for n in pipelines["data_engineering"].nodes}
    for dataset in datasets:
        assert f"{dataset}.validate" in names or f"{dataset}.validate_and_join_tables" in names
    assert set(pipelines["data_engineering"].nodes) <= set(pipelines["__default__"].nodes)


def test_data_engineering_end_to_end(kedro_project_copy):
    project = kedro_project_copy
    run_kedro(project, pipeline_names=["data_engineering"])
    for dataset in _engineered(project):
        assert (project / "data" / "test" / "05_model_input" / dataset / "model_input.h5ad").is_file()

    kang = ad.read_h5ad(project / "data" / "test" / "05_model_input" / "kang" / "model_input.h5ad")
    # conf/test subsamples to ~400 cells, keeping every cell type
    assert 380 <= kang.n_obs <= 420 and kang.obs["cell_type"].nunique() == 7
    assert set(kang.obs["split"]) == {"train", "validation"}
    assert "counts" in kang.layers and kang.uns["normalisation"]["source"] == "input"

    # scGen's balancing (of its delta pools) on the model input: every type equally often
    balanced = balance_by_cell_type(kang, "cell_type")
    assert balanced.obs["cell_type"].value_counts().nunique() == 1

    # the held-out type is scGen's now: holdout `largest` → CD4T on kang, resolved from the
    # model input with the run's own parameters; its stimulated cells are left out of training
    assert resolve_held_out_types(kang.obs["cell_type"], "largest") == ["CD4T"]
    _, parameters = read_parameters(project, env="test")
    settings = resolve_parameters(
        parameters["scgen"], parameters["datasets"]["kang"], "scgen", "kang", scgen_nodes.bind_dataset
    )
    assert settings["holdout"] == "largest"
    assert scgen_nodes.held_out_cell_types(kang, settings) == ["CD4T"]
    train, held = hold_out_condition(kang, "CD4T", "stimulated")
    assert set(held.obs["cell_type"]) == {"CD4T"} and set(held.obs["condition"]) == {"stimulated"}
    assert held.n_obs + train.n_obs == kang.n_obs

    pbmc = ad.read_h5ad(project / "data" / "test" / "05_model_input" / "pbmc_batches" / "model_input.h5ad")
    assert pbmc.obs["batch"].nunique() == 3 and pbmc.var["highly_variable"].any()

    mtbls = ad.read_h5ad(project / "data" / "test" / "05_model_input" / "mtbls79" / "model_input.h5ad")
    assert mtbls.n_obs == 172 and mtbls.obs["is_qc"].sum() == 38
    np.testing.assert_allclose(mtbls.X.mean(axis=0), 0, atol=1e-8)
    primary = ad.read_h5ad(project / "data" / "test" / "03_primary" / "mtbls79" / "primary.h5ad")
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


def _missing(path: Path) -> None:
    path.unlink()


@pytest.mark.parametrize(
    ("break_file", "message", "keys"),
    [
        (_drop_obs_column, r"kang_pbmc_ifnb.h5ad: required obs column\(s\) 'condition' missing", None),
        (_nan_in_x, r"kang_pbmc_ifnb.h5ad: X has 1 NaN/inf values, in cells", None),
        # keys.counts names the layer (auto would look for counts elsewhere)
        (
            _negative_counts,
            r"kang_pbmc_ifnb.h5ad: layers\['counts'\] must hold counts but has negative values.*datasets.kang.keys.counts",
            {"counts": "counts"},
        ),
        (_one_condition, r"kang_pbmc_ifnb.h5ad: obs column 'condition' needs at least 2 distinct values, found 1: 'control'", None),
        (_corrupt, r"kang_pbmc_ifnb.h5ad.*corrupt, truncated", None),
        (_missing, r"datasets.kang: file .*kang_pbmc_ifnb.h5ad does not exist; fix the path in datasets.yml", None),
    ],
    ids=["missing-column", "nan", "negative-counts", "single-condition", "corrupt-file", "missing-file"],
)
def test_bad_input_stops_the_run_and_writes_nothing(kedro_project_copy, break_file, message, keys):
    project = kedro_project_copy
    break_file(project / "data" / "01_raw" / "kang_pbmc_ifnb" / "kang_pbmc_ifnb.h5ad")
    if keys:
        (project / "conf" / "test" / "datasets.yml").write_text(yaml.safe_dump({"datasets": {"kang": {"keys": keys}}}))
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
