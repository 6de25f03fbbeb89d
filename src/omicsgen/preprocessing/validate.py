"""Input validation: every problem is reported with the file, the column and the values.

Validation runs as the first node of every data-engineering pipeline, so a bad file
stops the run before anything downstream is trained or written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

SOURCE_FILE_KEY = "source_file"


class InputValidationError(ValueError):
    """Bad input data. The message names the file, the column and the offending values."""


def source_of(data: ad.AnnData | pd.DataFrame, default: str = "<in-memory data>") -> str:
    """The file an AnnData or DataFrame was loaded from (recorded by the catalog)."""
    if isinstance(data, ad.AnnData):
        return str(data.uns.get(SOURCE_FILE_KEY, default))
    return str(data.attrs.get(SOURCE_FILE_KEY, default))


def preview(values: Iterable, limit: int = 5) -> str:
    """A short, readable list of offending values: ``'a', 'b', … (12 in total)``."""
    values = list(values)
    shown = ", ".join(repr(v.item() if isinstance(v, np.generic) else v) for v in values[:limit])
    if len(values) > limit:
        shown += f", … ({len(values)} in total)"
    return shown


def _values(matrix) -> np.ndarray:
    """The stored values of a dense or sparse matrix (zeros of sparse matrices skipped)."""
    if sp.issparse(matrix):
        return np.asarray(matrix.data)
    return np.asarray(matrix)


def _matrix(adata: ad.AnnData, layer: str | None):
    if layer is None:
        return adata.X
    return adata.layers[layer]


def _offending_cells(matrix, bad_mask_fn) -> list[str] | np.ndarray:
    """Row indices whose stored values satisfy ``bad_mask_fn``."""
    if sp.issparse(matrix):
        csr = sp.csr_matrix(matrix)
        bad = bad_mask_fn(csr.data)
        rows = np.repeat(np.arange(csr.shape[0]), np.diff(csr.indptr))
        return np.unique(rows[bad])
    bad = bad_mask_fn(np.asarray(matrix))
    return np.flatnonzero(bad.any(axis=1))


def check_obs_columns(adata: ad.AnnData, columns: Sequence[str], fixed_by: Mapping[str, str] | None = None) -> None:
    """The obs ``columns`` exist and have no missing values. ``fixed_by``: column → the
    parameter that names it, added to the error."""
    source = source_of(adata)
    fixed_by = fixed_by or {}

    def hint(names) -> str:
        parameters = [fixed_by[c] for c in names if c in fixed_by]
        return f" (set by {', '.join(parameters)})" if parameters else ""

    missing = [c for c in columns if c not in adata.obs.columns]
    if missing:
        raise InputValidationError(
            f"{source}: required obs column(s) {preview(missing)} missing{hint(missing)}; "
            f"obs has columns {preview(adata.obs.columns, limit=20)}"
        )
    for column in columns:
        empty = adata.obs_names[adata.obs[column].isna().to_numpy()]
        if len(empty):
            raise InputValidationError(
                f"{source}: obs column '{column}'{hint([column])} has missing values for cells {preview(empty)}"
            )


def check_min_categories(adata: ad.AnnData, min_categories: Mapping[str, int]) -> None:
    """At least ``n`` distinct values in each named obs column (e.g. two batches)."""
    source = source_of(adata)
    for column, minimum in min_categories.items():
        values = pd.unique(adata.obs[column].astype(str))
        if len(values) < minimum:
            raise InputValidationError(
                f"{source}: obs column '{column}' needs at least {minimum} distinct values, "
                f"found {len(values)}: {preview(sorted(values))}"
            )


def check_finite(adata: ad.AnnData, layer: str | None = None) -> None:
    matrix = _matrix(adata, layer)
    values = _values(matrix)
    if np.isfinite(values).all():
        return
    where = "X" if layer is None else f"layers['{layer}']"
    n_bad = int((~np.isfinite(values)).sum())
    cells = _offending_cells(matrix, lambda v: ~np.isfinite(v))
    raise InputValidationError(
        f"{source_of(adata)}: {where} has {n_bad} NaN/inf values, in cells "
        f"{preview(adata.obs_names[cells])}"
    )


def check_counts(adata: ad.AnnData, layer: str | None = None) -> None:
    """Raw counts: finite, non-negative integers."""
    check_finite(adata, layer)
    matrix = _matrix(adata, layer)
    values = _values(matrix)
    where = "X" if layer is None else f"layers['{layer}']"
    source = source_of(adata)
    if (values < 0).any():
        cells = _offending_cells(matrix, lambda v: v < 0)
        raise InputValidationError(
            f"{source}: {where} must hold counts but has negative values "
            f"(min {values.min():g}) in cells {preview(adata.obs_names[cells])}"
        )
    if not np.array_equal(values, np.round(values)):
        cells = _offending_cells(matrix, lambda v: v != np.round(v))
        raise InputValidationError(
            f"{source}: {where} must hold integer counts but has non-integer values "
            f"in cells {preview(adata.obs_names[cells])}"
        )


def check_unique_names(adata: ad.AnnData) -> None:
    source = source_of(adata)
    for axis, names in (("cell (obs)", adata.obs_names), ("gene (var)", adata.var_names)):
        duplicated = names[names.duplicated()]
        if len(duplicated):
            raise InputValidationError(
                f"{source}: duplicated {axis} names {preview(pd.unique(duplicated))}"
            )


def validate_single_cell(
    adata: ad.AnnData,
    required_obs: Sequence[str] = (),
    min_categories: Mapping[str, int] | None = None,
    counts_layer: str | None = None,
) -> ad.AnnData:
    """Check a cells × genes AnnData before anything is computed from it.

    Args:
        adata: The data as loaded.
        required_obs: obs columns that must exist and have no missing values.
        min_categories: obs column → minimum number of distinct values
            (``{"batch": 2}`` for batch correction, ``{"condition": 2}`` for perturbation).
        counts_layer: Layer that must hold raw counts (``"X"`` for X itself), or ``None``.

    Returns:
        The same AnnData, untouched.

    Raises:
        InputValidationError: naming the file, the column and the offending values.
    """
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise InputValidationError(f"{source_of(adata)}: empty data, shape {adata.shape}")
    check_unique_names(adata)
    check_obs_columns(adata, required_obs)
    check_min_categories(adata, min_categories or {})
    if adata.isbacked:
        # a large file: its matrix is scanned block by block, never loaded whole
        from omicsgen.preprocessing import backed

        backed.check_values(adata)
        if counts_layer is not None:
            backed.check_values(adata, counts_layer, counts=True)
        return adata
    check_finite(adata)
    if counts_layer is not None:
        layer = None if counts_layer == "X" else counts_layer
        if layer is not None and layer not in adata.layers:
            raise InputValidationError(
                f"{source_of(adata)}: counts layer '{layer}' missing; "
                f"layers are {preview(adata.layers.keys()) or 'none'}"
            )
        check_counts(adata, layer)
    return adata


def check_categories_present(
    adata: ad.AnnData, column: str, wanted: Iterable[str], what: str = "value"
) -> None:
    """Every ``wanted`` value occurs in ``obs[column]`` (e.g. a held-out cell type)."""
    present = set(adata.obs[column].astype(str))
    absent = [w for w in wanted if str(w) not in present]
    if absent:
        raise InputValidationError(
            f"{source_of(adata)}: {what} {preview(absent)} not found in obs column '{column}'; "
            f"it has {preview(sorted(present), limit=20)}"
        )
