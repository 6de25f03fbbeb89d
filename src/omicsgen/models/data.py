"""From AnnData to tensors."""

from __future__ import annotations

import anndata as ad
import numpy as np
import scipy.sparse as sp
import torch


def dense_matrix(adata: ad.AnnData, layer: str | None = None) -> np.ndarray:
    """X (or a layer) as a dense float32 array."""
    matrix = adata.X if layer is None else adata.layers[layer]
    if sp.issparse(matrix):
        matrix = matrix.toarray()
    return np.asarray(matrix, dtype=np.float32)


def expression_tensor(
    adata: ad.AnnData, layer: str | None = None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """X (or a layer) as a dense float32 tensor on ``device``."""
    return torch.from_numpy(dense_matrix(adata, layer)).to(device)
