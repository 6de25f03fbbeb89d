"""AnnDataDataset and TorchCheckpointDataset: round trips, versioning, bad files."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from kedro.io import DatasetError
from kedro.io.core import Version

from omicsgen.datasets import AnnDataDataset, TorchCheckpointDataset


@pytest.fixture
def rich_adata() -> ad.AnnData:
    rng = np.random.default_rng(0)
    X = sp.random(30, 12, density=0.3, format="csr", random_state=1, dtype=np.float32)
    obs = pd.DataFrame(
        {"cell_type": pd.Categorical(rng.choice(["B", "T"], 30)), "score": rng.normal(size=30)},
        index=[f"c{i}" for i in range(30)],
    )
    var = pd.DataFrame({"gene_symbol": [f"G{i}" for i in range(12)]}, index=[f"g{i}" for i in range(12)])
    adata = ad.AnnData(X=X, obs=obs, var=var)
    adata.layers["counts"] = sp.csr_matrix(np.round(X.toarray() * 10))
    adata.obsm["X_pca"] = rng.normal(size=(30, 4)).astype(np.float32)
    adata.uns["params"] = {"seed": 3, "name": "test", "values": np.arange(3)}
    return adata


def test_anndata_round_trip_keeps_everything(tmp_path, rich_adata):
    dataset = AnnDataDataset(filepath=str(tmp_path / "sub" / "x.h5ad"))
    assert not dataset.exists()
    dataset.save(rich_adata)
    assert dataset.exists()
    loaded = dataset.load()
    np.testing.assert_array_equal(loaded.X.toarray(), rich_adata.X.toarray())
    np.testing.assert_array_equal(loaded.layers["counts"].toarray(), rich_adata.layers["counts"].toarray())
    pd.testing.assert_frame_equal(loaded.obs, rich_adata.obs)
    pd.testing.assert_frame_equal(loaded.var, rich_adata.var)
    np.testing.assert_array_equal(loaded.obsm["X_pca"], rich_adata.obsm["X_pca"])
    assert loaded.uns["params"]["seed"] == 3
    np.testing.assert_array_equal(loaded.uns["params"]["values"], np.arange(3))
    # the file it came from is recorded, so validation errors can name it
    assert loaded.uns["source_file"].endswith("sub/x.h5ad")
    assert "source_file" not in rich_adata.uns


def test_anndata_backed_loading(tmp_path, rich_adata):
    path = tmp_path / "x.h5ad"
    AnnDataDataset(filepath=str(path)).save(rich_adata)
    backed = AnnDataDataset(filepath=str(path), backed="r").load()
    assert backed.isbacked
    np.testing.assert_array_equal(backed.X[:5].toarray(), rich_adata.X[:5].toarray())
    backed.file.close()


def test_anndata_versioned(tmp_path, rich_adata):
    dataset = AnnDataDataset(filepath=str(tmp_path / "v.h5ad"), version=Version(None, None))
    dataset.save(rich_adata)
    saved = list((tmp_path / "v.h5ad").iterdir())
    assert len(saved) == 1 and (saved[0] / "v.h5ad").is_file()
    assert dataset.load().shape == rich_adata.shape


def test_anndata_describe_names_file(tmp_path):
    description = AnnDataDataset(filepath=str(tmp_path / "d.h5ad"), backed="r")._describe()
    assert str(description["filepath"]).endswith("d.h5ad") and description["backed"] == "r"


def test_anndata_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match=r"not found.*missing\.h5ad"):
        AnnDataDataset(filepath=str(tmp_path / "missing.h5ad")).load()


def test_anndata_corrupt_file_is_a_clear_error(tmp_path):
    path = tmp_path / "corrupt.h5ad"
    path.write_bytes(b"this is not hdf5" * 100)
    with pytest.raises(DatasetError, match=r"corrupt.h5ad.*corrupt, truncated"):
        AnnDataDataset(filepath=str(path)).load()


def test_anndata_save_is_atomic(tmp_path, rich_adata, monkeypatch):
    path = tmp_path / "x.h5ad"
    dataset = AnnDataDataset(filepath=str(path))
    dataset.save(rich_adata)
    before = path.read_bytes()

    def crash(self, *args, **kwargs):
        open(args[0], "wb").write(b"half written")
        raise RuntimeError("disk full")

    monkeypatch.setattr(ad.AnnData, "write_h5ad", crash)
    with pytest.raises(DatasetError):
        dataset.save(rich_adata[:3].copy())
    assert path.read_bytes() == before, "a failed save must leave the previous file intact"
    assert [p.name for p in tmp_path.iterdir()] == ["x.h5ad"], "no temporary file left behind"


def test_anndata_rejects_non_anndata(tmp_path):
    with pytest.raises(DatasetError, match="only save AnnData"):
        AnnDataDataset(filepath=str(tmp_path / "x.h5ad")).save(pd.DataFrame())


def test_anndata_backed_needs_local_file():
    with pytest.raises(DatasetError, match="local file"):
        AnnDataDataset(filepath="s3://bucket/x.h5ad", backed="r")


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    import torch

    net = torch.nn.Linear(4, 2)
    dataset = TorchCheckpointDataset(filepath=str(tmp_path / "m" / "model.pt"))
    dataset.save({"state_dict": {"net": net.state_dict()}, "config": {"n_in": 4, "genes": ["a", "b"]}})
    loaded = dataset.load()
    assert loaded["config"] == {"n_in": 4, "genes": ["a", "b"]}
    torch.testing.assert_close(loaded["state_dict"]["net"]["weight"], net.weight.detach())


class Evil:
    """Any class: unpickling it could run arbitrary code."""


def test_checkpoint_refuses_pickled_objects(tmp_path):
    import torch

    path = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "payload": Evil()}, path)
    with pytest.raises(DatasetError, match="weights_only=True"):
        TorchCheckpointDataset(filepath=str(path)).load()


def test_checkpoint_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        TorchCheckpointDataset(filepath=str(tmp_path / "nope.pt")).load()
