"""AIF end to end: bad input stops the run with nothing written; `aif`, `aif_grid_search`
(2×2 grid × 2 seeds as Dask tasks on a 2-worker LocalCluster) and `aif_apply` (the saved
model corrects the dataset again) in the test environment."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest

from omicsgen.preprocessing.validate import InputValidationError

SRC = str(Path(__file__).resolve().parents[1] / "src")


def _run(project: Path, pipelines: list[str], runtime_params: dict | None = None):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="test", runtime_params=runtime_params) as session:
        return session.run(pipeline_names=pipelines)


def _outputs(project: Path) -> list[Path]:
    return [p for layer in ("06_models", "07_model_output", "08_reporting") for p in (project / "data" / "test" / layer / "pbmc_batches" / "aif").glob("*")]


def test_aif_pipelines_end_to_end(kedro_project_copy, monkeypatch):
    # Dask worker processes import omicsgen from this worktree through PYTHONPATH.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])))
    project = kedro_project_copy

    with pytest.raises(Exception, match="reference batch 'nope' not found") as error:
        _run(project, ["aif"], {"aif": {"correction": {"reference_batch": "nope"}}})
    assert isinstance(error.value, InputValidationError) or "InputValidationError" in repr(error.value)
    # the error names the file: the raw file when the run's preflight checks catch it before
    # data engineering, the model input when the pipeline's own check does
    assert re.search(r"(pbmc_three_chemistries|model_input)\.h5ad", str(error.value))
    assert _outputs(project) == []

    # Grid points with a batch size larger than every batch fail: reported, not dropped.
    # (Parameters merge "soft": the base grid's delta [0.0, 0.1] stays, so 2 of 4 points fail.)
    params = project / "conf" / "test" / "parameters" / "aif.yml"
    text = params.read_text().replace(
        "    grid:\n      gamma: [1.0, 10.0]\n      delta: [0.1, 1.0]\n",
        "    grid:\n      gamma: [1.0]\n      batch_size: [32, 100000]\n",
    )
    assert "100000" in text
    params.write_text(text)
    _run(project, ["aif", "aif_grid_search"], {"runtime": {"tracking": {"enabled": True}}})
    # the run is one MLflow run, and every grid-search point a run nested in it
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{project / 'data' / 'test' / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["omicsgen"])
    parents = runs[runs["tags.kedro.pipeline"] == "aif,aif_grid_search"]
    assert len(parents) == 1
    nested = runs[runs["tags.mlflow.parentRunId"] == parents["run_id"].iloc[0]]
    grid_points = pd.read_csv(project / "data" / "test" / "08_reporting" / "pbmc_batches" / "aif" / "grid_search.csv")
    assert len(nested) == len(grid_points) >= 4
    _run(project, ["aif_apply"])  # reads the checkpoint the aif run saved

    reporting = project / "data" / "test" / "08_reporting" / "pbmc_batches" / "aif"
    metrics = json.loads((reporting / "metrics.json").read_text())
    assert set(metrics) == {"uncorrected", "combat", "harmony", "scgen", "aif"}
    for scores in metrics.values():
        assert 0.0 <= scores["Total"] <= 1.0
        assert scores["Total"] == pytest.approx(0.4 * scores["Batch correction"] + 0.6 * scores["Bio conservation"])
        # The test env switches kBET and BRAS off (conf/test/parameters/aif.yml): 8 metrics remain.
        assert set(scores) - {"Batch correction", "Bio conservation", "Total"} == {
            "iLISI", "Graph connectivity", "PCR comparison", "KMeans NMI", "KMeans ARI", "cLISI",
            "Silhouette label", "Isolated labels",
        }
    # Classical corrections must beat no correction on the batch side.
    assert metrics["combat"]["Batch correction"] > metrics["uncorrected"]["Batch correction"]
    for name in ("umap.png", "metrics_table.png", "metrics.csv"):
        assert (reporting / name).stat().st_size > 0
    assert (project / "data" / "test" / "06_models" / "pbmc_batches" / "aif" / "aif.pt").exists()
    training = json.loads((project / "data" / "test" / "06_models" / "pbmc_batches" / "aif" / "training.json").read_text())
    assert training["epochs_run"] == 2 and training["config"]["seed"] == 0

    import anndata as ad
    import numpy as np

    corrected = ad.read_h5ad(project / "data" / "test" / "07_model_output" / "pbmc_batches" / "aif" / "corrected.h5ad")
    assert corrected.layers["aif_corrected"].shape == corrected.shape
    assert corrected.obsm["X_aif"].shape[1] == 8
    # aif_apply: the saved model (weights_only) corrects the same cells to the same numbers.
    applied = ad.read_h5ad(project / "data" / "test" / "07_model_output" / "pbmc_batches" / "aif_apply" / "applied.h5ad")
    np.testing.assert_array_equal(applied.layers["aif_corrected"], corrected.layers["aif_corrected"])
    np.testing.assert_array_equal(applied.obsm["X_aif"], corrected.obsm["X_aif"])

    table = pd.read_csv(reporting / "grid_search.csv")
    robust = table[table["search"] == "robust"]
    assert len(robust) == 8 and set(robust["seed"]) == {0, 1}  # 2×2 grid × 2 seeds
    assert (robust["status"] == "ok").all()
    failed = table[table["status"] == "failed"]
    assert len(failed) == 2 and (failed["param_batch_size"] == 100000).all()
    assert failed["error"].str.contains("fewer than the batch size 100000").all()
    assert {"train_loss", "train_mse", "train_aux", "seconds", "param_gamma"} <= set(table.columns)
    # Same seed, same parameters, different Dask worker → the same numbers.
    grid_ok = table[(table["search"] == "grid") & (table["status"] == "ok") & (table["param_delta"] == 0.1)].iloc[0]
    twin = robust[(robust["param_gamma"] == 1.0) & (robust["param_delta"] == 0.1) & (robust["seed"] == 0)]
    assert twin["train_loss"].item() == pytest.approx(grid_ok["train_loss"], rel=1e-6)

    best = json.loads((reporting / "grid_best_setting.json").read_text())
    medians = robust.groupby("setting")["train_loss"].median()
    assert best["setting"] == medians.idxmin() and best["selected_by"] == "train_loss"
    refit = json.loads((project / "data" / "test" / "06_models" / "pbmc_batches" / "aif" / "grid_best_training.json").read_text())
    assert refit["selection"]["seed"] == best["seed"]
    assert (project / "data" / "test" / "06_models" / "pbmc_batches" / "aif" / "grid_best.pt").exists()
