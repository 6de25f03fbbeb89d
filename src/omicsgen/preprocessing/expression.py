"""Single-cell expression preprocessing: thin, AnnData-in/AnnData-out wrappers of scanpy.

Every function returns a new AnnData and never changes its input (Kedro passes the
same object to every consumer of a MemoryDataset declared with ``copy_mode: assign``).
"""

from __future__ import annotations

import logging
import warnings

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp

from omicsgen.preprocessing import backed
from omicsgen.preprocessing.validate import (
    InputValidationError,
    check_categories_present,
    check_counts,
    source_of,
)

logger = logging.getLogger(__name__)

#: ``uns`` key describing how X was normalised (``{"source": ..., "target_sum": ...}``).
NORMALISATION_KEY = "normalisation"


def subsample_cells(
    adata: ad.AnnData, max_cells: int | None, stratify_key: str | None = None, seed: int = 0
) -> ad.AnnData:
    """Keep at most ``max_cells`` cells, proportionally from each ``stratify_key`` group.

    ``max_cells: null`` keeps everything (the default outside the test environment).
    """
    if max_cells is None or adata.n_obs <= max_cells:
        return backed.with_annotations(adata) if adata.isbacked else adata.copy()
    rng = np.random.default_rng(seed)
    if stratify_key is None:
        keep = np.sort(rng.choice(adata.n_obs, size=max_cells, replace=False))
        return backed.subset(adata, keep, None, None, "subsampled") if adata.isbacked else adata[keep].copy()
    groups = adata.obs[stratify_key].astype(str).to_numpy()
    keep: list[np.ndarray] = []
    for group in sorted(set(groups)):
        members = np.flatnonzero(groups == group)
        # at least 2 per group, so that every group survives a train/validation split
        n_group = max(2, round(max_cells * len(members) / adata.n_obs))
        keep.append(rng.choice(members, size=min(n_group, len(members)), replace=False))
    rows = np.sort(np.concatenate(keep))
    return backed.subset(adata, rows, None, None, "subsampled") if adata.isbacked else adata[rows].copy()


def filter_cells_and_genes(adata: ad.AnnData, min_genes: int = 0, min_cells: int = 0) -> ad.AnnData:
    """Drop cells expressing fewer than ``min_genes`` genes, then genes seen in fewer
    than ``min_cells`` cells (scanpy's ``filter_cells``/``filter_genes``)."""
    if adata.isbacked:
        cells, genes = backed.qc_masks(adata, min_genes, min_cells)
        out = backed.subset(adata, np.flatnonzero(cells), genes, None, "filtered") if cells.any() else adata[:0]
    else:
        out = adata.copy()
        if min_genes:
            sc.pp.filter_cells(out, min_genes=min_genes)
        if min_cells:
            sc.pp.filter_genes(out, min_cells=min_cells)
    if out.n_obs == 0 or out.n_vars == 0:
        raise InputValidationError(
            f"{source_of(adata)}: QC filtering (min_genes={min_genes}, min_cells={min_cells}) "
            f"removed everything ({adata.shape} → {out.shape})"
        )
    logger.info("QC filtering: %s → %s (cells × genes)", adata.shape, out.shape)
    return out


def _integer_valued(matrix) -> bool:
    values = matrix.data if sp.issparse(matrix) else np.asarray(matrix)
    return bool(values.size) and bool(np.all(values >= 0)) and bool(np.all(values == np.round(values)))


#: ``uns`` key recording where the raw counts were found (``{"source": "X" | "layers/<name>" | None}``)
COUNTS_KEY = "counts_source"


def locate_counts(adata: ad.AnnData, counts: str = "auto", parameter: str = "keys.counts") -> ad.AnnData:
    """Find the raw counts and put them in ``layers["counts"]``.

    ``counts: auto`` takes ``layers["counts"]`` when there is one (checked: an error if it
    holds anything but non-negative integers), else the first of X and the other layers that
    holds non-negative integers; ``"X"`` or a layer name insists on that one
    (an error names ``parameter`` if it does not hold counts). Data with no counts anywhere
    (already log-normalised, e.g. scGen's Kang file without its layer) is kept, with
    ``uns["counts_source"]["source"] = None``: methods that need counts say so before training.
    """
    if adata.isbacked:
        return _locate_counts_backed(adata, counts, parameter)
    out = adata.copy()
    if counts == "auto" and "counts" in out.layers:
        counts = "counts"  # a layer named counts is meant to hold them: check it, do not skip it
    if counts != "auto":
        layer = None if counts == "X" else counts
        if layer is not None and layer not in out.layers:
            raise InputValidationError(
                f"{source_of(adata)}: {parameter} is '{counts}', but there is no such layer; "
                f"layers are {list(out.layers.keys()) or 'none'} (use X for counts in X, or auto)"
            )
        try:
            check_counts(out, layer)
        except InputValidationError as error:
            raise InputValidationError(f"{error}; set {parameter} to where the raw counts are, or auto") from None
        candidates = [counts]
    else:
        names = ["counts", "X", *[name for name in out.layers if name != "counts"]]
        candidates = [
            name for name in names
            if (name == "X" or name in out.layers) and _integer_valued(out.X if name == "X" else out.layers[name])
        ][:1]  # fmt: skip
    if not candidates:
        out.uns[COUNTS_KEY] = {"source": None}
        logger.warning(
            "%s: no raw counts found in X or the layers %s; methods that need counts will stop "
            "(set %s if they are somewhere else)", source_of(adata), list(out.layers.keys()), parameter
        )
        return out
    source = candidates[0]
    if source != "counts":
        out.layers["counts"] = (out.X if source == "X" else out.layers[source]).copy()
    out.uns[COUNTS_KEY] = {"source": "X" if source == "X" else f"layers/{source}"}
    return out


def _locate_counts_backed(adata: ad.AnnData, counts: str, parameter: str) -> ad.AnnData:
    """:func:`locate_counts` on a backed file: the counts are found and checked block by
    block and recorded, not copied (normalisation writes them to ``layers["counts"]``)."""
    if counts == "auto" and "counts" in adata.layers:
        counts = "counts"
    names = ["X", *adata.layers.keys()] if counts == "auto" else [counts]
    if counts != "auto":
        if counts != "X" and counts not in adata.layers:
            raise InputValidationError(
                f"{source_of(adata)}: {parameter} is '{counts}', but there is no such layer; "
                f"layers are {list(adata.layers.keys()) or 'none'} (use X for counts in X, or auto)"
            )
        try:
            backed.check_values(adata, counts, counts=True)
        except InputValidationError as error:
            raise InputValidationError(f"{error}; set {parameter} to where the raw counts are, or auto") from None
    found = [name for name in names if counts != "auto" or backed.is_counts(adata, name)][:1]
    out = backed.with_annotations(adata)
    out.uns[COUNTS_KEY] = {"source": (None if not found else "X" if found[0] == "X" else f"layers/{found[0]}")}
    if not found:
        logger.warning("%s: no raw counts found in X or the layers; methods that need counts will stop", source_of(adata))
    return out


def detect_expression_scale(adata: ad.AnnData) -> str:
    """``"counts"`` (non-negative integers), ``"log_normalised"`` or ``"other"`` (e.g. scaled).

    Data already log-normalised is recognised by scanpy's ``uns["log1p"]`` marker, our
    own normalisation record, or non-integer non-negative values of log-like range.
    """
    if "log1p" in adata.uns or NORMALISATION_KEY in adata.uns:
        return "log_normalised"
    if _integer_valued(adata.X):
        return "counts"
    values = adata.X.data if sp.issparse(adata.X) else np.asarray(adata.X)
    if values.size and values.min() >= 0 and values.max() < 30:
        return "log_normalised"
    return "other"


def normalise_expression(
    adata: ad.AnnData, target_sum: float | None = 1e4, counts_layer: str | None = "counts"
) -> ad.AnnData:
    """Library-size normalise and log1p, from counts, exactly once.

    - X already log-normalised (see :func:`detect_expression_scale`): kept as it is, so
      published preprocessing (scGen's Kang data) is not altered and nothing is logged twice.
    - X holds counts: they are copied to ``layers[counts_layer]`` and X becomes
      ``log1p(normalize_total(X, target_sum))``.
    - Otherwise (negative or scaled values): an error, since counts are needed.

    Records what was done in ``uns["normalisation"]``.
    """
    if adata.isbacked:
        return _normalise_backed(adata, target_sum)
    out = adata.copy()
    scale = detect_expression_scale(out)
    if scale == "log_normalised":
        out.uns[NORMALISATION_KEY] = {"source": "input", "note": "X was already log-normalised"}
        return out
    if scale != "counts" and counts_layer and counts_layer in out.layers:
        out.X = out.layers[counts_layer].copy()  # X is scaled or otherwise processed: start again from counts
        scale = "counts"
    if scale != "counts":
        raise InputValidationError(
            f"{source_of(adata)}: X is neither counts nor log-normalised expression "
            "(negative or very large values); provide raw counts in X or a counts layer"
        )
    check_counts(out)
    if counts_layer:
        out.layers[counts_layer] = out.X.copy()
    out.X = out.X.astype(np.float32)
    sc.pp.normalize_total(out, target_sum=target_sum)
    sc.pp.log1p(out)
    out.uns[NORMALISATION_KEY] = {
        "source": "counts",
        "target_sum": "median" if target_sum is None else float(target_sum),
    }
    return out


def _normalise_backed(adata: ad.AnnData, target_sum: float | None) -> ad.AnnData:
    """:func:`normalise_expression` on a backed file, block by block, from the counts that
    :func:`locate_counts` recorded."""
    source = dict(adata.uns.get(COUNTS_KEY) or {}).get("source")
    if "log1p" in adata.uns or NORMALISATION_KEY in adata.uns or source is None:
        if source is None and "log1p" not in adata.uns:
            raise InputValidationError(
                f"{source_of(adata)}: no raw counts found to normalise (a large file is read block by block: "
                "put the counts in X or a counts layer)"
            )
        out = backed.with_annotations(adata)
        out.uns[NORMALISATION_KEY] = {"source": "input", "note": "X was already log-normalised"}
        return out
    if target_sum is None:
        raise InputValidationError(
            f"{source_of(adata)}: normalisation.target_sum: null (the median library size) needs the data in "
            "memory; give a number for a large file"
        )
    out = backed.normalise(adata, source, float(target_sum), None)
    out.uns[NORMALISATION_KEY] = {"source": "counts", "target_sum": float(target_sum)}
    return out


def select_highly_variable_genes(
    adata: ad.AnnData,
    n_top_genes: int | None = None,
    flavor: str = "seurat",
    batch_key: str | None = None,
    subset: bool = False,
) -> ad.AnnData:
    """Mark highly variable genes in ``var["highly_variable"]`` (scanpy), optionally subset.

    ``n_top_genes: null`` or at least the number of genes marks every gene, which keeps
    datasets that were already reduced to HVGs (Kang) as they are.
    """
    if adata.isbacked:
        out = backed.with_annotations(adata)
        out.var["highly_variable"] = (
            True if n_top_genes is None or n_top_genes >= adata.n_vars
            else backed.highly_variable(adata, n_top_genes, batch_key)
        )  # fmt: skip
        if subset:
            out = backed.subset(out, None, out.var["highly_variable"].to_numpy(), None, "highly_variable")
        return out
    out = adata.copy()
    if n_top_genes is None or n_top_genes >= out.n_vars:
        out.var["highly_variable"] = True
        return out
    sc.pp.highly_variable_genes(out, n_top_genes=n_top_genes, flavor=flavor, batch_key=batch_key)
    if subset:
        out = out[:, out.var["highly_variable"].to_numpy()].copy()
    return out


def balance_by_cell_type(
    adata: ad.AnnData, cell_type_key: str = "cell_type", seed: int = 0
) -> ad.AnnData:
    """scGen's balancing: resample every cell type with replacement to the size of the
    largest one. Resampled cells get unique names ``<cell>-<k>``; ``obs["original_cell"]``
    keeps the source cell."""
    labels = adata.obs[cell_type_key].astype(str).to_numpy()
    types, sizes = np.unique(labels, return_counts=True)
    if len(types) == 0:
        raise InputValidationError(f"{source_of(adata)}: no cells to balance")
    target = int(sizes.max())
    rng = np.random.default_rng(seed)
    index = np.concatenate(
        [rng.choice(np.flatnonzero(labels == t), size=target, replace=True) for t in types]
    )
    with warnings.catch_warnings():
        # names are made unique right below
        warnings.filterwarnings("ignore", message="Observation names are not unique")
        out = adata[index].copy()
    out.obs["original_cell"] = adata.obs_names[index].to_numpy()
    out.obs_names = [f"{name}-{k}" for k, name in enumerate(out.obs["original_cell"])]
    return out


def split_train_validation(
    adata: ad.AnnData,
    validation_fraction: float = 0.1,
    stratify_key: str | None = None,
    seed: int = 0,
    key: str = "split",
) -> ad.AnnData:
    """Add ``obs[key]`` ∈ {"train", "validation"}, stratified by ``stratify_key``."""
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    rng = np.random.default_rng(seed)
    groups = (
        adata.obs[stratify_key].astype(str).to_numpy()
        if stratify_key
        else np.zeros(adata.n_obs, dtype=int).astype(str)
    )
    is_validation = np.zeros(adata.n_obs, dtype=bool)
    for group in sorted(set(groups)):
        members = rng.permutation(np.flatnonzero(groups == group))
        is_validation[members[: int(round(validation_fraction * len(members)))]] = True
    out = backed.with_annotations(adata) if adata.isbacked else adata.copy()
    out.obs[key] = pd.Categorical(
        np.where(is_validation, "validation", "train"), categories=["train", "validation"]
    )
    return out


def resolve_held_out_types(cell_types: pd.Series, holdout) -> list[str]:
    """The held-out cell types named by scGen's ``holdout``: one type, a list (or a
    ``"a;b"`` string), ``"all"`` (every type) or ``"largest"`` (the most frequent type)."""
    labels = cell_types.astype(str)
    if holdout == "all":
        return sorted(labels.unique())
    if holdout == "largest":
        counts = labels.value_counts()
        return [str(sorted(counts.index[counts == counts.max()])[0])]
    if isinstance(holdout, str):
        return [part.strip() for part in holdout.split(";") if part.strip()]
    return [str(t) for t in holdout]


def hold_out_condition(
    adata: ad.AnnData,
    cell_type: str,
    condition: str,
    cell_type_key: str = "cell_type",
    condition_key: str = "condition",
) -> tuple[ad.AnnData, ad.AnnData]:
    """Perturbation split: remove one cell type's cells of one condition (its stimulated
    cells) from training. Returns ``(training cells, held-out cells)``."""
    check_categories_present(adata, cell_type_key, [cell_type], what="cell type")
    check_categories_present(adata, condition_key, [condition], what="condition")
    held = (adata.obs[cell_type_key].astype(str) == str(cell_type)) & (
        adata.obs[condition_key].astype(str) == str(condition)
    )
    held = held.to_numpy()
    if not held.any():
        raise InputValidationError(
            f"{source_of(adata)}: no cells of cell type '{cell_type}' with "
            f"{condition_key}='{condition}' to hold out"
        )
    if adata.isbacked:
        # a large file: the training cells are written block by block to a scratch file
        training = backed.subset(adata, np.flatnonzero(~held), None, None, "training_cells")
        return training, adata[held].to_memory()
    return adata[~held].copy(), adata[held].copy()
