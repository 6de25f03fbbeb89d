"""End to end: ``kedro run --pipelines vae`` in the test env on a copy of the project."""

from __future__ import annotations

import json

import anndata as ad
import pandas as pd
import pytest

from omicsgen.datasets import TorchCheckpointDataset
from tests.conftest import run_kedro
from tests.test_vae import one_thread  # noqa: F401  (autouse: one torch/numba thread)


def test_bad_feature_table_stops_the_run_before_training(kedro_project_copy):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(kedro_project_copy)
    table = pd.DataFrame({"g1": [1.0, 2.0, 3.0], "g2": ["x", "1", "2"]}, index=["a", "b", "c"])
    path = kedro_project_copy / "cells.csv"
    table.to_csv(path)
    with pytest.raises(Exception, match=r"cells.csv: feature columns must be numeric; non-numeric columns 'g2'"):
        with KedroSession.create(
            project_path=kedro_project_copy,
            env="test",
            runtime_params={"vae": {"cells": {"input": {"file": str(path), "label_key": None}}}},
        ) as session:
            session.run(pipeline_names=["vae"])
    # nothing of the cell embedding was written (the independent binning half may have run)
    data = kedro_project_copy / "data"
    for output in ("06_models/vae/model.pt", "06_models/vae/training.json",
                   "07_model_output/vae/embedding.h5ad", "08_reporting/vae/metrics.json"):
        assert not (data / output).exists()


def test_vae_pipeline_end_to_end(kedro_project_copy):
    run_kedro(kedro_project_copy, pipeline_names=["vae"])
    data = kedro_project_copy / "data"
    embedding = ad.read_h5ad(data / "07_model_output" / "vae" / "embedding.h5ad")
    assert embedding.n_obs == 400  # conf/test subsamples kang
    assert embedding.obsm["X_vae"].shape == (400, 8) and embedding.obsm["X_pca"].shape == (400, 50)
    for key in ("X_umap_vae", "X_umap_pca"):
        assert embedding.obsm[key].shape == (400, 2)
    for column in ("vae_leiden", "vae_hdbscan", "pca_leiden", "pca_hdbscan"):
        assert column in embedding.obs

    metrics = json.loads((data / "08_reporting" / "vae" / "metrics.json").read_text())
    for name in ("vae", "pca"):
        assert 0.0 < metrics[name]["leiden"]["ari"] <= 1.0
        assert -1.0 <= metrics[name]["silhouette"] <= 1.0
    checkpoint = TorchCheckpointDataset(filepath=str(data / "06_models" / "vae" / "model.pt")).load()
    assert checkpoint["feature_names"] == list(embedding.var_names)
    training = json.loads((data / "06_models" / "vae" / "training.json").read_text())
    assert training["epochs_run"] == 8 and "validation_loss" in training["history"][0]

    binning = json.loads((data / "08_reporting" / "vae" / "binning_metrics.json").read_text())
    assert binning["n_samples"] == 1400 and binning["n_features"] == 136 and binning["n_labels"] == 6
    assert binning["vae"]["leiden"]["ari"] > 0.5  # even 10 epochs separate the genomes
    assert binning["vae"]["leiden"]["bins"]["bins"][0]["precision"] > 0.5
    for figure in ("umap.png", "training_curves.png", "binning_umap.png", "binning_training_curves.png"):
        assert (data / "08_reporting" / "vae" / figure).stat().st_size > 10_000
