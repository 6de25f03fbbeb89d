"""Data engineering of a large file, block by block, gives what it gives in memory."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest

from omicsgen import preprocessing as pp
from omicsgen.datasets import AnnDataDataset
from omicsgen.preprocessing import backed
from omicsgen.preprocessing.simulate import simulate_scrna_counts
from omicsgen.preprocessing.validate import InputValidationError


def _steps(adata: ad.AnnData, n_top_genes: int | None, batch_key: str | None) -> ad.AnnData:
    located = pp.locate_counts(pp.validate_single_cell(adata))
    subsampled = pp.subsample_cells(located, None, stratify_key="cell_type")
    filtered = pp.filter_cells_and_genes(subsampled, min_genes=30, min_cells=5)
    normalised = pp.normalise_expression(filtered, target_sum=1e4, counts_layer="counts")
    primary = pp.select_highly_variable_genes(normalised, n_top_genes=n_top_genes, flavor="seurat", batch_key=batch_key)
    return pp.split_train_validation(primary, 0.1, stratify_key="cell_type", seed=0)


@pytest.fixture
def raw_file(tmp_path, monkeypatch):
    adata = simulate_scrna_counts(n_cells=1500, n_genes=300, n_cell_types=3, n_batches=2, seed=2, counts_layer=None)
    empty = np.ones(adata.n_obs)
    empty[:7] = 0
    adata.X = adata.X.multiply(empty[:, None]).tocsr()  # seven empty cells, removed by QC
    path = tmp_path / "raw.h5ad"
    adata.write_h5ad(path)
    monkeypatch.setattr(backed, "BACKED_BYTES", 0)  # every file counts as large
    monkeypatch.setattr(backed, "BLOCK_CELLS", 256)  # several blocks
    return path


@pytest.mark.parametrize(("n_top_genes", "batch_key"), [(None, None), (120, None), (120, "batch")])
def test_block_by_block_equals_in_memory(raw_file, n_top_genes, batch_key):
    on_disk = AnnDataDataset(filepath=str(raw_file), backed="auto").load()
    assert on_disk.isbacked
    in_memory = _steps(ad.read_h5ad(raw_file), n_top_genes, batch_key)
    streamed = _steps(on_disk, n_top_genes, batch_key)
    assert streamed.isbacked and streamed.shape == in_memory.shape and in_memory.n_obs == 1493
    assert list(streamed.obs_names) == list(in_memory.obs_names)
    assert list(streamed.var_names) == list(in_memory.var_names)
    np.testing.assert_array_equal(streamed.obs["split"], in_memory.obs["split"])
    np.testing.assert_array_equal(streamed.layers["counts"][:].toarray(), in_memory.layers["counts"].toarray())
    np.testing.assert_allclose(streamed.X[:].toarray(), in_memory.X.toarray(), rtol=1e-5, atol=1e-5)
    hvg_streamed, hvg_memory = streamed.var["highly_variable"].to_numpy(), in_memory.var["highly_variable"].to_numpy()
    assert hvg_streamed.sum() == hvg_memory.sum() == (n_top_genes or 300)
    # scanpy's Seurat dispersions from per-gene sums: the same genes up to ties at the cut
    assert (hvg_streamed == hvg_memory).mean() >= 0.98


def test_a_saved_backed_file_round_trips_without_loading(raw_file, tmp_path):
    on_disk = AnnDataDataset(filepath=str(raw_file), backed="auto").load()
    result = _steps(on_disk, None, None)
    target = AnnDataDataset(filepath=str(tmp_path / "out" / "model_input.h5ad"), backed="auto")
    target.save(result)
    again = ad.read_h5ad(tmp_path / "out" / "model_input.h5ad")
    assert again.shape == result.shape and "split" in again.obs and "counts" in again.layers
    np.testing.assert_array_equal(again.X.toarray(), result.X[:].toarray())


def test_bad_values_in_a_large_file_are_named_before_anything_is_written(tmp_path, monkeypatch):
    adata = simulate_scrna_counts(n_cells=600, n_genes=100, n_cell_types=2, seed=1, counts_layer=None)
    adata.X = adata.X.tocsr()
    adata.X.data[adata.X.indptr[500]] = np.nan
    path = tmp_path / "bad.h5ad"
    adata.write_h5ad(path)
    monkeypatch.setattr(backed, "BACKED_BYTES", 0)
    with pytest.raises(InputValidationError, match=r"NaN/inf values in cells .*cell_?0*500"):
        pp.validate_single_cell(AnnDataDataset(filepath=str(path), backed="auto").load())
