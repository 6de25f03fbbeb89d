"""The dataset registry: datasets declared once, errors that name the fix, counts found."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import scipy.sparse as sp

from omicsgen.datasets import DeclaredDataset
from omicsgen.preprocessing import InputValidationError, locate_counts, simulate_scrna_counts
from omicsgen.registry import DatasetRegistryError, activate, parse_registry
from tests.conftest import run_kedro


def test_an_entry_gets_its_kinds_defaults_and_absolute_paths(tmp_path):
    specs = parse_registry(
        {"study": {"kind": "perturbation", "file": "data/x.h5ad", "keys": {"cell_type": "celltype"}}}, tmp_path
    )
    spec = specs["study"]
    assert spec.file == str(tmp_path / "data" / "x.h5ad")
    assert spec.keys == {
        "condition": "condition", "control": "control", "stimulated": "stimulated",
        "cell_type": "celltype", "counts": "auto",
    }  # fmt: skip
    assert spec.methods == ("scgen", "cscgan", "vae")
    lipids = parse_registry(
        {"lipids": {"kind": "metabolomics", "files": {"data": "/d.csv", "info": "/i.csv"}, "keys": {"qc_label": "QC;pool"}}},
        tmp_path,
    )["lipids"]
    assert lipids.keys["qc_label"] == ["QC", "pool"] and lipids.methods == ("normae",)
    assert parse_registry({"kang": None}, tmp_path) == {}  # switched off


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"kind": "proteomics", "file": "x"}, "datasets.s.kind is 'proteomics'; it must be one of"),
        ({"kind": "perturbation"}, "datasets.s: 'file' (the path to the data) is not set"),
        ({"kind": "metabolomics", "files": {"data": "d.csv"}}, "needs files: {data: <path>, info: <path>}; missing ['info']"),
        ({"kind": "scrna_batches", "file": "x", "keys": {"condition": "c"}}, "datasets.s.keys: unknown key(s) ['condition']"),
        ({"kind": "metabolomics", "files": {"data": "d", "info": "i"}, "methods": ["scgen"]}, "datasets.s.methods: ['scgen'] cannot run"),
        ({"kind": "cell_table", "file": "x", "colour": "red"}, "datasets.s: unknown field(s) ['colour']"),
    ],
)
def test_bad_entries_name_the_field_that_fixes_them(tmp_path, entry, message):
    with pytest.raises(DatasetRegistryError) as error:
        parse_registry({"s": entry}, tmp_path)
    assert message in str(error.value)


def test_an_undeclared_dataset_is_named_with_the_declared_ones(tmp_path):
    activate(parse_registry({"kang": {"kind": "perturbation", "file": str(tmp_path / "k.h5ad")}}, tmp_path), {}, tmp_path)
    with pytest.raises(Exception, match=r"'my_study' is not declared in datasets.yml; declared: \['kang'\]"):
        DeclaredDataset(dataset="my_study").load()
    with pytest.raises(Exception, match=r"datasets.kang: file .*k.h5ad does not exist"):
        DeclaredDataset(dataset="kang").load()


def _cells(counts_layer):
    return simulate_scrna_counts(n_cells=60, n_genes=120, n_cell_types=2, n_markers=10, seed=1, counts_layer=counts_layer)


def test_counts_are_found_in_x_or_any_layer():
    in_x = locate_counts(_cells(None))
    assert in_x.uns["counts_source"] == {"source": "X"}
    assert (in_x.layers["counts"] != in_x.X).nnz == 0

    elsewhere = _cells(None)
    elsewhere.layers["raw_umis"] = elsewhere.X.copy()
    elsewhere.X = sp.csr_matrix(np.log1p(elsewhere.X.toarray()) * 0.9)
    found = locate_counts(elsewhere)
    assert found.uns["counts_source"] == {"source": "layers/raw_umis"}
    assert np.array_equal(found.layers["counts"].toarray(), elsewhere.layers["raw_umis"].toarray())


def test_counts_where_the_user_says_or_an_error_naming_the_parameter(caplog):
    logged = _cells(None)
    logged.X = sp.csr_matrix(np.log1p(logged.X.toarray()))
    with pytest.raises(InputValidationError, match=r"set datasets.study.keys.counts to where the raw counts are"):
        locate_counts(logged, "X", parameter="datasets.study.keys.counts")
    with pytest.raises(InputValidationError, match=r"datasets.study.keys.counts is 'counts', but there is no such layer"):
        locate_counts(logged, "counts", parameter="datasets.study.keys.counts")
    with caplog.at_level(logging.WARNING):
        none = locate_counts(logged, parameter="datasets.study.keys.counts")
    assert none.uns["counts_source"] == {"source": None} and "counts" not in none.layers
    assert "datasets.study.keys.counts" in caplog.text


def test_a_wrong_column_stops_the_run_before_any_node_and_writes_nothing(kedro_project_copy):
    project = kedro_project_copy
    cells = _cells(None)
    cells.obs = cells.obs.rename(columns={"cell_type": "celltype"})
    path = project / "data" / "01_raw" / "mine" / "cells.h5ad"
    path.parent.mkdir(parents=True)
    cells.write_h5ad(path)
    (project / "conf" / "test" / "datasets.yml").write_text(
        "datasets:\n  mine:\n    kind: perturbation\n    file: data/01_raw/mine/cells.h5ad\n"
    )
    with pytest.raises(InputValidationError) as error:
        run_kedro(project, pipeline_names=["scgen"])
    message = str(error.value)
    assert str(path) in message and "'cell_type'" in message and "datasets.mine.keys" in message
    assert sorted(p.name for p in (project / "data").iterdir()) == ["01_raw"]


def test_a_held_out_type_that_does_not_exist_stops_the_run_before_any_node(kedro_project_copy):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(kedro_project_copy)
    with KedroSession.create(
        project_path=kedro_project_copy, env="test", runtime_params={"scgen": {"holdout": "Tcell"}}
    ) as session, pytest.raises(InputValidationError) as error:
        session.run()
    assert "held-out cell type 'Tcell' not found in obs column 'cell_type'" in str(error.value)
    assert "scgen.overrides.kang.holdout" in str(error.value)
    assert sorted(p.name for p in (kedro_project_copy / "data").iterdir()) == ["01_raw"]


def test_two_declared_datasets_get_their_own_namespaces_and_paths(kedro_project_copy):
    from omicsgen.pipelines.methods import build_method_pipelines
    from omicsgen.registry import activate_project

    (kedro_project_copy / "conf" / "test" / "datasets.yml").write_text(
        "datasets:\n  second:\n    kind: perturbation\n    file: data/01_raw/kang_pbmc_ifnb/kang_pbmc_ifnb.h5ad\n"
        "    methods: [scgen, vae]\n"
    )
    activate_project(kedro_project_copy, "test")
    built = build_method_pipelines()
    assert built["scgen"].datasets == ("kang", "second") and built["aif"].datasets == ("pbmc_batches",)
    assert built["cscgan"].datasets == ("kang",)
    vae = built["vae"].pipeline
    assert {n.namespace for n in vae.nodes} == {"kang.vae", "second.vae", "simulated_metagenome.vae"}
    assert {"kang.vae.metrics", "second.vae.metrics"} <= vae.all_outputs()


def test_a_test_environment_run_leaves_the_base_outputs_byte_identical(kedro_project_copy):
    """Each environment writes under its own data root (globals.yml): data/ and data/test/."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    project = kedro_project_copy
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="base") as session:
        session.run(pipeline_names=["data_engineering"], namespaces=["mtbls79"])
    base = {
        path: path.read_bytes()
        for path in sorted((project / "data").rglob("*"))
        if path.is_file() and "01_raw" not in path.parts
    }
    assert any("05_model_input" in str(path) for path in base) and not (project / "data" / "test").exists()
    run_kedro(project, pipeline_names=["data_engineering"], namespaces=["mtbls79"])
    assert (project / "data" / "test" / "05_model_input" / "mtbls79" / "model_input.h5ad").is_file()
    assert {path: path.read_bytes() for path in base} == base


def test_a_test_environment_run_is_one_mlflow_run_with_parameters_and_metrics(kedro_project_copy):
    import mlflow

    _run_with_params(kedro_project_copy, TRACKING, ["normae"])
    store = kedro_project_copy / "data" / "test" / "mlflow.db"
    assert store.is_file()
    mlflow.set_tracking_uri(f"sqlite:///{store}")
    runs = mlflow.search_runs(experiment_names=["omicsgen"])
    assert len(runs) == 1 and runs["status"].tolist() == ["FINISHED"]
    run = runs.iloc[0]
    assert run["tags.kedro.env"] == "test" and run["tags.runs"] == "mtbls79.normae"
    assert run["params.normae.training.seed"] == "0" and run["tags.threads"] == "1"
    assert run["tags.version.torch"] and run["tags.version.scanpy"] and run["tags.version.anndata"]
    assert 0 < run["metrics.mtbls79.normae.metrics.normae.qc_pca_distance"]
    history = mlflow.tracking.MlflowClient().get_metric_history(run.run_id, "mtbls79.normae.training.train_reconstruction")
    assert len(history) >= 3 and sorted({m.step for m in history}) == [m.step for m in history]
    artifacts = mlflow.tracking.MlflowClient().list_artifacts(run.run_id, "models/mtbls79.normae")
    assert [a.path.rsplit("/", 1)[-1] for a in artifacts] == ["normae.pt"]


def test_an_unreachable_tracking_server_warns_and_records_locally(kedro_project_copy, caplog):
    import mlflow

    with caplog.at_level(logging.WARNING):
        _run_with_params(kedro_project_copy, {"runtime": {"tracking": {"enabled": True, "uri": "http://127.0.0.1:9"}}})
    assert "http://127.0.0.1:9 cannot be reached" in caplog.text
    mlflow.set_tracking_uri(f"sqlite:///{kedro_project_copy / 'data' / 'test' / 'mlflow.db'}")
    assert len(mlflow.search_runs(experiment_names=["omicsgen"])) == 1


#: the test environment switches MLflow tracking off (conf/test); these tests switch it on
TRACKING = {"runtime": {"tracking": {"enabled": True}}}


def _run_with_params(project, params, pipelines=("data_engineering",)):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="test", runtime_params=params) as session:
        session.run(pipeline_names=list(pipelines), namespaces=None if pipelines != ("data_engineering",) else ["mtbls79"])


def test_after_a_killed_run_only_missing_outputs_redoes_nothing_completed(kedro_project_copy):
    """`kedro run --only-missing-outputs` after a run killed during reporting: the trained
    model is not trained again, the missing reports are written."""
    project = kedro_project_copy
    run_kedro(project, pipeline_names=["normae"])
    root = project / "data" / "test"
    model = root / "06_models" / "mtbls79" / "normae" / "normae.pt"
    trained = model.stat().st_mtime_ns
    metrics = root / "08_reporting" / "mtbls79" / "normae" / "metrics.json"
    metrics.unlink()  # as if the run had been killed before reporting
    run_kedro(project, pipeline_names=["normae"], only_missing_outputs=True)
    assert metrics.is_file() and model.stat().st_mtime_ns == trained
