"""Training streams from disk: the same losses as in memory, every row once per epoch."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scanpy as sc
import torch

from omicsgen.models import AIF, VAE, CscGAN, ScGen
from omicsgen.models.data import CellRows, cell_rows, streams
from omicsgen.models.training import minibatches
from omicsgen.preprocessing.simulate import simulate_scrna_counts

TRAINING = {"max_epochs": 2, "batch_size": 32, "patience": None, "progress": False, "checkpoint_every": None}


@pytest.fixture(scope="module")
def cells_file(tmp_path_factory):
    """500 log-normalised simulated cells × 120 genes, CSR, in an h5ad."""
    adata = simulate_scrna_counts(n_cells=500, n_genes=120, n_cell_types=3, n_markers=10, n_response_genes=10, seed=4)
    sc.pp.normalize_total(adata, target_sum=1e4)
    sc.pp.log1p(adata)
    adata.obs["split"] = np.where(np.arange(adata.n_obs) % 10 == 0, "validation", "train")
    path = tmp_path_factory.mktemp("streaming") / "cells.h5ad"
    adata.write_h5ad(path)
    return path


@pytest.fixture
def cells(cells_file) -> tuple[ad.AnnData, ad.AnnData]:
    """(in memory, backed ``r``) copies of the file."""
    backed = ad.read_h5ad(cells_file, backed="r")
    yield ad.read_h5ad(cells_file), backed
    backed.file.close()


def _losses(model) -> np.ndarray:
    history = model.training_result.history
    return np.array([[v for k, v in row.items() if k.startswith(("train_", "validation_"))] for row in history])


@pytest.mark.parametrize("method", ["scgen", "vae", "aif"])
def test_streaming_from_a_backed_file_gives_the_in_memory_losses(cells, method):
    in_memory, backed = cells
    results = []
    for adata, loading in ((in_memory, "memory"), (backed, "auto")):
        if method == "scgen":
            ScGen.setup_anndata(adata, condition_key="condition", control="control", stimulated="stimulated",
                                cell_type_key="cell_type")  # fmt: skip
            model = ScGen(adata, {"n_hidden": 32, "n_latent": 8}, {}, {**TRAINING, "data_loading": loading})
        elif method == "vae":
            VAE.setup_anndata(adata)
            model = VAE(adata, {"hidden_dims": [32], "latent_dim": 4}, {}, {**TRAINING, "data_loading": loading})
        else:
            AIF.setup_anndata(adata, batch_key="batch")
            model = AIF(adata, {"latent_dim": 4, "hidden": [32], "adversary_hidden": [16]}, {},
                        {**TRAINING, "data_loading": loading})  # fmt: skip
        assert streams(adata, loading) == (loading == "auto")
        model.train()
        results.append((_losses(model), model.get_latent_representation()))
    (memory_losses, memory_latent), (stream_losses, stream_latent) = results
    np.testing.assert_allclose(stream_losses, memory_losses, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stream_latent, memory_latent, rtol=1e-4, atol=1e-5)
    if method == "scgen":
        np.testing.assert_allclose(model.delta, ScGen.from_checkpoint(model.checkpoint()).delta)


def test_cscgan_streams_its_cells_with_the_same_losses(cells):
    from omicsgen.preprocessing.cscgan import preprocess_counts

    in_memory, _ = cells
    raw = simulate_scrna_counts(n_cells=300, n_genes=80, n_cell_types=2, n_markers=10, n_response_genes=10, seed=5)
    prepared = preprocess_counts(raw, min_cells_per_gene=1, min_genes_per_cell=1, library_size=1000,
                                 n_top_genes=None, min_cells_per_type=10, cell_type_key="cell_type")  # fmt: skip
    histories = []
    for loading in ("memory", "stream"):
        CscGAN.setup_anndata(prepared, cell_type_key="cell_type")
        model = CscGAN(prepared, {"latent_dim": 8, "generator_layers": [16], "critic_layers": [16]}, {},
                       {"generator_steps": 4, "batch_size": 16, "progress": False, "data_loading": loading})  # fmt: skip
        model.train()
        histories.append(_losses(model))
    np.testing.assert_allclose(histories[1], histories[0], rtol=1e-5, atol=1e-6)


def test_buffered_minibatches_serve_every_backed_row_once_per_epoch(cells):
    in_memory, backed = cells
    rows = CellRows(backed.X)
    dense = in_memory.X.toarray()
    labels = torch.arange(backed.n_obs)
    seen = []
    for epoch in range(2):
        generator = torch.Generator().manual_seed(epoch)
        batches = list(minibatches({"x": rows, "i": labels}, 32, generator, buffer_cells=128))
        order = torch.cat([b["i"] for b in batches])
        # each row exactly once (a one-cell final batch of a buffer may be skipped)
        assert len(order) == len(set(order.tolist())) >= backed.n_obs - 4
        for batch in batches[:3]:
            np.testing.assert_array_equal(batch["x"].numpy(), dense[batch["i"].numpy()])
        seen.append(order)
    assert not torch.equal(seen[0][: len(seen[1])], seen[1][: len(seen[0])])  # reshuffled per epoch


def test_auto_keeps_small_data_in_memory_and_a_forced_mode_wins(cells):
    in_memory, backed = cells
    assert isinstance(cell_rows(in_memory), torch.Tensor)
    assert isinstance(cell_rows(in_memory, loading="stream"), CellRows)
    assert isinstance(cell_rows(backed), CellRows)
    with pytest.raises(ValueError, match="data_loading"):
        streams(in_memory, "disk")
