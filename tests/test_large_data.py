"""Nothing fails because data is large: every cell method end to end on ≥ 10,000 cells.

A user's file as they come: simulated raw counts in X, no ``counts`` layer, declared in the
test environment's ``datasets.yml`` (no catalog edit). 10,000 cells is past scanpy's
switch to pynndescent at 8,192 cells, which used to crash the VAE's clustering.
"""

from __future__ import annotations

import json

import anndata as ad
import pytest

from omicsgen.preprocessing import write_scrna_h5ad
from tests.conftest import run_kedro

N_CELLS = 10_000


@pytest.mark.slow
def test_every_cell_method_runs_on_10k_cells_with_counts_in_x(kedro_project_copy):
    project = kedro_project_copy
    path = project / "data" / "01_raw" / "simulated" / "cells.h5ad"
    simulated = write_scrna_h5ad(path, n_cells=N_CELLS, n_genes=400, n_cell_types=4, n_batches=2, seed=3)
    assert "counts" not in simulated.layers
    (project / "conf" / "test" / "datasets.yml").write_text(
        "datasets:\n"
        "  kang: null\n  pbmc_batches: null\n  mtbls79: null\n  simulated_metagenome: null\n"
        "  big_perturbation:\n"
        "    kind: perturbation\n"
        "    file: data/01_raw/simulated/cells.h5ad\n"
        "    preprocessing: {subsample: {max_cells: null}}\n"
        "  big_batches:\n"
        "    kind: scrna_batches\n"
        "    file: data/01_raw/simulated/cells.h5ad\n"
        "    preprocessing: {subsample: {max_cells: null}}\n"
    )
    run_kedro(project)

    reporting = project / "data" / "test" / "08_reporting"
    for dataset, method in [
        ("big_perturbation", "scgen"), ("big_perturbation", "cscgan"),
        ("big_perturbation", "vae"), ("big_batches", "aif"),
    ]:  # fmt: skip
        metrics = json.loads((reporting / dataset / method / "metrics.json").read_text())
        assert metrics, f"{dataset}.{method} wrote empty metrics"
        described = json.loads((reporting / dataset / method / "data.json").read_text())
        assert described["dataset"] == dataset
        assert described["n_obs"] >= N_CELLS * 0.99, described["n_obs"]  # QC may drop a few cells
        assert described["counts_from"] == "X"
    # scoring above the caps of the test environment ran on a stratified subsample and says so
    aif = json.loads((reporting / "big_batches" / "aif" / "metrics.json").read_text())
    assert aif["scored_on_subsample"]["of"] >= N_CELLS * 0.99
    assert 2900 <= aif["scored_on_subsample"]["cells"] <= 3100, aif["scored_on_subsample"]
    assert aif["scored_on_subsample"]["parameter"] == "aif.metrics.max_cells"
    generation = json.loads((reporting / "big_perturbation" / "cscgan" / "metrics.json").read_text())["generation"]
    assert generation["scored_on_subsample"]["cells"] <= 2 * 1500 + 4 * 10
    assert generation["overall"]["real_vs_real"]["n_reference"] <= 1500 + 4 * 10
    vae = json.loads((reporting / "big_perturbation" / "vae" / "metrics.json").read_text())
    assert vae["n_samples"] >= N_CELLS * 0.99 and 0 <= vae["vae"]["leiden"]["ari"] <= 1
    model_input = ad.read_h5ad(project / "data" / "test" / "05_model_input" / "big_perturbation" / "model_input.h5ad")
    assert model_input.layers["counts"].max() > 1  # counts found in X and kept beside the normalised X
    page = (reporting / "report.html").read_text()
    for section in ("scgen-big_perturbation", "cscgan-big_perturbation", "vae-big_perturbation", "aif-big_batches"):
        assert f'id="{section}"' in page
