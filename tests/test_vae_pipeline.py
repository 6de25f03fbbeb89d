"""End to end: ``kedro run --pipelines vae`` in the test env on a copy of the project."""

from __future__ import annotations

import json

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from omicsgen.datasets import TorchCheckpointDataset
from tests.conftest import run_kedro
from tests.test_vae import one_thread  # noqa: F401  (autouse: one torch/numba thread)


def _declare_cells(project, table: pd.DataFrame) -> None:
    """Declare ``table`` as the cell_table dataset ``cells`` of the test environment (the
    VAE runs on it by default), with the shipped datasets the VAE would also run on off."""
    table.to_csv(project / "cells.csv")
    (project / "conf" / "test" / "datasets.yml").write_text(
        "datasets:\n  kang: null\n  simulated_metagenome: null\n"
        "  cells:\n    kind: cell_table\n    file: cells.csv\n    keys: {cell_type: label}\n"
    )


def _nan_feature(table):
    table.loc["b", "g1"] = float("nan")
    return table, r"cells.csv: 1 missing/NaN/inf values in rows 'b', columns 'g1'"


def _non_numeric_feature(table):
    table["g2"] = ["x", "1", "2", "3"]
    return table, r"cells.csv: feature columns must be numeric; non-numeric columns 'g2'"


@pytest.mark.parametrize(
    "corrupt",
    [_nan_feature, _non_numeric_feature],
)
def test_bad_feature_table_stops_the_run_before_training(kedro_project_copy, corrupt):
    table = pd.DataFrame(
        {"g1": [1.0, 2.0, 3.0, 4.0], "g2": [0.5, 1.5, 2.5, 3.5], "label": ["t1", "t1", "t2", "t2"]},
        index=["a", "b", "c", "d"],
    )
    table, message = corrupt(table)
    _declare_cells(kedro_project_copy, table)
    with pytest.raises(Exception, match=message):
        run_kedro(kedro_project_copy, pipeline_names=["vae"])
    # nothing of the cell embedding was written
    data = kedro_project_copy / "data" / "test"
    for output in ("06_models/cells/vae/model.pt", "06_models/cells/vae/training.json",
                   "07_model_output/cells/vae/embedding.h5ad", "08_reporting/cells/vae/metrics.json"):
        assert not (data / output).exists()


def test_a_typo_in_a_vae_section_stops_the_run_before_any_node(kedro_project_copy):
    (kedro_project_copy / "conf" / "test" / "parameters" / "vae.yml").write_text("vae:\n  cells:\n    plan: {betta: 2.0}\n")
    with pytest.raises(ValueError, match=r"vae.cells.plan: unknown parameter\(s\) \['betta'\]"):
        run_kedro(kedro_project_copy, pipeline_names=["vae"])
    assert not (kedro_project_copy / "data" / "test" / "02_intermediate").exists()
    assert not (kedro_project_copy / "data" / "test" / "06_models").exists()


def test_vae_pipeline_end_to_end(kedro_project_copy):
    run_kedro(kedro_project_copy, pipeline_names=["vae"])
    data = kedro_project_copy / "data" / "test"
    embedding = ad.read_h5ad(data / "07_model_output" / "kang" / "vae" / "embedding.h5ad")
    assert embedding.n_obs == 400  # conf/test subsamples kang
    assert embedding.obsm["X_vae"].shape == (400, 8) and embedding.obsm["X_pca"].shape == (400, 50)
    for key in ("X_umap_vae", "X_umap_pca"):
        assert embedding.obsm[key].shape == (400, 2)
    for column in ("vae_leiden", "vae_hdbscan", "pca_leiden", "pca_hdbscan"):
        assert column in embedding.obs

    metrics = json.loads((data / "08_reporting" / "kang" / "vae" / "metrics.json").read_text())
    for name in ("vae", "pca"):
        assert 0.0 < metrics[name]["leiden"]["ari"] <= 1.0
        assert -1.0 <= metrics[name]["silhouette"] <= 1.0
    assert "_omicsgen_setup" not in embedding.uns  # the model's registration stays in its own copy
    checkpoint = TorchCheckpointDataset(filepath=str(data / "06_models" / "kang" / "vae" / "model.pt")).load()
    assert checkpoint["model"] == "vae" and checkpoint["var_names"] == list(embedding.var_names)
    assert checkpoint["config"]["model"]["output_activation"] == "linear"  # "auto", resolved from the data
    training = json.loads((data / "06_models" / "kang" / "vae" / "training.json").read_text())
    assert training["epochs_run"] == 8 and "validation_loss" in training["history"][0]

    # the reads of the sequences dataset, binned in their own namespace
    binned = data / "08_reporting" / "simulated_metagenome" / "vae"
    binning = json.loads((binned / "metrics.json").read_text())
    assert binning["n_samples"] == 1400 and binning["n_features"] == 136 and binning["n_labels"] == 6
    assert binning["vae"]["leiden"]["ari"] > 0.5  # even 10 epochs separate the genomes
    assert binning["vae"]["leiden"]["bins"]["bins"][0]["precision"] > 0.5
    for figure in ("umap.png", "training_curves.png"):
        assert (data / "08_reporting" / "kang" / "vae" / figure).stat().st_size > 10_000
        assert (binned / figure).stat().st_size > 10_000
    assert (data / "06_models" / "simulated_metagenome" / "vae" / "model.pt").exists()

    # vae_apply: the saved models embed their datasets again → the same latent
    run_kedro(kedro_project_copy, pipeline_names=["vae_apply"])
    for dataset in ("kang", "simulated_metagenome"):
        applied = ad.read_h5ad(data / "07_model_output" / dataset / "vae_apply" / "applied.h5ad")
        embedded = ad.read_h5ad(data / "07_model_output" / dataset / "vae" / "embedding.h5ad")
        np.testing.assert_array_equal(applied.obsm["X_vae"], embedded.obsm["X_vae"])
        assert applied.var_names.equals(embedded.var_names)
