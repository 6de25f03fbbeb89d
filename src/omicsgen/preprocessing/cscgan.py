"""scGAN's preprocessing of raw counts (Marouf et al. 2020): the step before a
:class:`omicsgen.models.cscgan.CscGAN` is built. Pure AnnData in, AnnData out (no torch)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp

from omicsgen.preprocessing.expression import filter_cells_and_genes
from omicsgen.preprocessing.validate import (
    SOURCE_FILE_KEY,
    InputValidationError,
    check_counts,
    check_obs_columns,
    preview,
    source_of,
)

logger = logging.getLogger(__name__)

#: ``uns`` key of what :func:`preprocess_counts` did (library size, excluded cell types)
PREPROCESSING_KEY = "cscgan_preprocessing"


def preprocess_counts(  # noqa: PLR0913
    adata: ad.AnnData,
    counts_layer: str | None = "counts",
    cell_type_key: str = "cell_type",
    min_cells_per_gene: int = 3,
    min_genes_per_cell: int = 10,
    library_size: float = 20000.0,
    n_top_genes: int | None = None,
    min_cells_per_type: int = 0,
    genes: Sequence[str] | None = None,
) -> ad.AnnData:
    """scGAN's preprocessing of raw counts → a new AnnData whose X the GAN trains on.

    Counts are validated (non-negative integers), cells with fewer than
    ``min_genes_per_cell`` expressed genes and then genes seen in fewer than
    ``min_cells_per_gene`` cells are dropped (the original's order), optionally only the
    ``n_top_genes`` most variable genes (Seurat flavour on log1p of normalised counts) are
    kept, and every cell is scaled to ``library_size`` total counts (no log). The gene
    subset is chosen before scaling, so every real cell sums to ``library_size`` exactly
    like the generator's output; a cell without counts in the subset is dropped. Cell types
    with fewer than ``min_cells_per_type`` cells are removed with a warning. What was done
    is recorded in ``uns["cscgan_preprocessing"]`` (the model reads its library size there).

    ``genes`` (a trained model's, matched by name; a missing one is an error listing them)
    replaces the gene filter and selection: new cells are then preprocessed like the
    model's training cells.
    """
    source = source_of(adata)
    if counts_layer is not None and counts_layer not in adata.layers:
        raise InputValidationError(
            f"{source}: counts layer '{counts_layer}' missing; layers are {list(adata.layers.keys()) or 'none'}"
        )
    check_obs_columns(adata, [cell_type_key])
    check_counts(adata, counts_layer)
    counts = adata.X if counts_layer is None else adata.layers[counts_layer]
    out = ad.AnnData(
        X=sp.csr_matrix(counts, dtype=np.float32),
        obs=pd.DataFrame({cell_type_key: adata.obs[cell_type_key].astype(str).to_numpy()}, index=adata.obs_names),
        var=pd.DataFrame(index=adata.var_names),
        uns={k: v for k, v in adata.uns.items() if k == SOURCE_FILE_KEY},  # later errors name the file
    )
    if genes is None:
        out = filter_cells_and_genes(out, min_genes=min_genes_per_cell, min_cells=min_cells_per_gene)
        if n_top_genes is not None and n_top_genes < out.n_vars:
            scaled = sc.pp.normalize_total(out, target_sum=library_size, copy=True)
            sc.pp.log1p(scaled)
            sc.pp.highly_variable_genes(scaled, n_top_genes=n_top_genes, flavor="seurat")
            out = out[:, scaled.var["highly_variable"].to_numpy()].copy()
    else:
        present = set(out.var_names)
        missing = [g for g in genes if g not in present]
        if missing:
            raise InputValidationError(
                f"{source}: {len(missing)} of the model's {len(genes)} genes are missing: {preview(missing)}"
            )
        out = filter_cells_and_genes(out, min_genes=min_genes_per_cell)[:, list(genes)].copy()
    # a cell without counts in the kept genes cannot be scaled to the library size
    out = out[np.asarray(out.X.sum(axis=1)).ravel() > 0].copy()
    sizes = out.obs[cell_type_key].value_counts()
    too_small = sorted(str(t) for t, n in sizes.items() if n < min_cells_per_type)
    for cell_type in too_small:
        message = (
            f"{source}: cell type '{cell_type}' has {sizes[cell_type]} cells, fewer than "
            f"min_cells_per_type={min_cells_per_type}: excluded from training and generation"
        )
        logger.warning(message)
        warnings.warn(message, UserWarning, stacklevel=2)
    out = out[~out.obs[cell_type_key].isin(too_small).to_numpy()].copy()
    if out.obs[cell_type_key].nunique() == 0:
        raise InputValidationError(f"{source}: every cell type has fewer than {min_cells_per_type} cells")
    sc.pp.normalize_total(out, target_sum=library_size)
    out.X = sp.csr_matrix(out.X, dtype=np.float32)
    out.obs[cell_type_key] = pd.Categorical(out.obs[cell_type_key])
    out.uns[PREPROCESSING_KEY] = {
        "library_size": float(library_size),
        "excluded_cell_types": too_small,
        "n_top_genes": -1 if n_top_genes is None or genes is not None else int(n_top_genes),
    }
    return out
