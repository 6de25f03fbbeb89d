"""Simulators: deterministic by seed and carrying the structure they promise."""

from __future__ import annotations

import numpy as np
import pandas as pd

from omicsgen.preprocessing import (
    simulate_metabolomics,
    simulate_scrna_counts,
    write_metabolomics_csv,
)


def test_scrna_simulation_is_deterministic_and_chunk_stable():
    a = simulate_scrna_counts(n_cells=300, n_genes=200, seed=3)
    b = simulate_scrna_counts(n_cells=300, n_genes=200, seed=3)
    c = simulate_scrna_counts(n_cells=300, n_genes=200, seed=4)
    assert (a.X != b.X).nnz == 0
    assert (a.X != c.X).nnz > 0
    pd.testing.assert_frame_equal(a.obs, b.obs)


def test_scrna_simulation_structure():
    adata = simulate_scrna_counts(n_cells=2000, n_genes=300, n_cell_types=3, n_batches=2, seed=0)
    X = adata.X.toarray()
    assert np.array_equal(X, np.round(X)) and X.min() >= 0
    assert set(adata.obs["condition"]) == {"control", "stimulated"}
    assert adata.obs["batch"].nunique() == 2 and adata.obs["cell_type"].nunique() == 3
    # markers are higher in their own type than elsewhere
    normalised = X / X.sum(axis=1, keepdims=True)
    for cell_type in adata.obs["cell_type"].cat.categories:
        markers = (adata.var["marker_of"] == cell_type).to_numpy()
        inside = (adata.obs["cell_type"] == cell_type).to_numpy()
        assert normalised[np.ix_(inside, markers)].mean() > 3 * normalised[np.ix_(~inside, markers)].mean()
    # stimulation raises the response genes
    response = adata.var["response_gene"].to_numpy()
    stimulated = (adata.obs["condition"] == "stimulated").to_numpy()
    assert normalised[np.ix_(stimulated, response)].mean() > 1.5 * normalised[np.ix_(~stimulated, response)].mean()
    # overdispersion: variance above the Poisson mean for a highly expressed gene
    gene = X.mean(axis=0).argmax()
    assert X[:, gene].var() > X[:, gene].mean()


def test_scrna_simulation_scales_in_chunks():
    adata = simulate_scrna_counts(n_cells=30_000, n_genes=100, n_markers=10, seed=1, chunk_size=10_000)
    assert adata.shape == (30_000, 100) and adata.X.format == "csr"
    assert adata.obs_names.is_unique


def test_metabolomics_simulation(tmp_path):
    data, info = simulate_metabolomics(n_features=50, n_batches=3, samples_per_batch=20, seed=2)
    again, _ = simulate_metabolomics(n_features=50, n_batches=3, samples_per_batch=20, seed=2)
    pd.testing.assert_frame_equal(data, again)
    assert list(data.columns[1:]) == list(info["sample_id"])
    assert set(info["class"]) == {"QC", "case", "control"} and info["batch"].nunique() == 3
    assert (info["injection_order"].diff().dropna() == 1).all()
    values = data.iloc[:, 1:].to_numpy()
    assert 0 < np.isnan(values).mean() < 0.1
    assert not np.isnan(values).all(axis=1).any()
    # batches differ: per-batch medians of a feature are spread out
    logs = np.log(values[~np.isnan(values).any(axis=1)])
    medians = [np.median(logs[:, (info["batch"] == b).to_numpy()], axis=1) for b in (1, 2, 3)]
    assert np.abs(medians[0] - medians[1]).mean() > 0.2
    write_metabolomics_csv(data, info, tmp_path)
    assert pd.read_csv(tmp_path / "data.csv").shape == data.shape
    assert pd.read_csv(tmp_path / "info.csv").shape == info.shape
