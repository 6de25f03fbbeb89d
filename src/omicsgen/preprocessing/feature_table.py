"""Samples × features tables (CSV) and h5ad files as AnnData, for methods that embed any matrix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from omicsgen.preprocessing.validate import (
    SOURCE_FILE_KEY,
    InputValidationError,
    preview,
    source_of,
)


def feature_table_to_anndata(
    table: pd.DataFrame, annotation_columns: Sequence[str] = (), source: str | None = None
) -> ad.AnnData:
    """A table whose index names the samples and whose columns are numeric features.

    ``annotation_columns`` that are present (labels, split) go to ``obs``; every other
    column must be numeric.

    Raises:
        InputValidationError: naming the file, for an empty table, duplicated sample or
            feature names, non-numeric feature columns, or NaN/inf values.
    """
    source = source or source_of(table)
    annotations = [c for c in annotation_columns if c in table.columns]
    features = table.drop(columns=annotations)
    if features.shape[0] < 2 or features.shape[1] < 1:
        raise InputValidationError(f"{source}: need at least 2 rows and 1 feature column, got {features.shape}")
    non_numeric = [c for c in features.columns if not pd.api.types.is_numeric_dtype(features[c])]
    if non_numeric:
        raise InputValidationError(
            f"{source}: feature columns must be numeric; non-numeric columns {preview(non_numeric)} "
            f"(name label columns in annotation_columns, now {list(annotation_columns)})"
        )
    for axis, names in (("sample (row)", features.index), ("feature (column)", features.columns)):
        duplicated = names[names.duplicated()]
        if len(duplicated):
            raise InputValidationError(f"{source}: duplicated {axis} names {preview(duplicated.unique())}")
    values = features.to_numpy(dtype=np.float32)
    bad = ~np.isfinite(values)
    if bad.any():
        raise InputValidationError(
            f"{source}: {int(bad.sum())} missing/NaN/inf values in rows "
            f"{preview(features.index[bad.any(axis=1)])}, columns {preview(features.columns[bad.any(axis=0)])}"
        )
    obs = table[annotations].copy()
    obs.index = obs.index.astype(str)
    adata = ad.AnnData(X=values, obs=obs, var=pd.DataFrame(index=features.columns.astype(str)))
    adata.uns[SOURCE_FILE_KEY] = source
    return adata


def read_samples_by_features(path: str | Path, annotation_columns: Sequence[str] = ()) -> ad.AnnData:
    """An ``.h5ad`` file, or a CSV whose first column names the samples (see above)."""
    path = Path(path)
    if not path.exists():
        raise InputValidationError(f"{path}: file not found")
    if path.suffix == ".h5ad":
        adata = ad.read_h5ad(path)
        adata.uns[SOURCE_FILE_KEY] = str(path)
        return adata
    if path.suffix.lower() not in (".csv", ".tsv", ".txt"):
        raise InputValidationError(f"{path}: expected an .h5ad or a .csv/.tsv feature table")
    table = pd.read_csv(path, index_col=0, sep="\t" if path.suffix.lower() == ".tsv" else ",")
    return feature_table_to_anndata(table, annotation_columns, source=str(path))
