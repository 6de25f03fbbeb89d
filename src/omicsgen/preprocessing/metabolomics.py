"""Metabolomics preprocessing for NormAE-format tables.

Input: ``data.csv`` (features × samples, first column the feature name) and
``info.csv`` (one row per sample: sample id, batch, class with ``QC`` for pooled QC
injections, injection order). Output: an AnnData with samples as observations.

Scaling is recorded so corrected values go back to the original intensity scale with
:func:`restore_original_scale` — exactly once (the original NormAE undid its
standardisation twice).
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd

from omicsgen.preprocessing.validate import InputValidationError, preview, source_of

#: ``uns`` key recording the transforms applied to X: ``{"log": bool, "standardised": bool}``.
SCALING_KEY = "scaling"
#: layer holding intensities on the original scale after imputation.
INTENSITY_LAYER = "intensity"


def _check_info_columns(info: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in info.columns]
    if missing:
        raise InputValidationError(
            f"{source_of(info)}: required column(s) {preview(missing)} missing; "
            f"it has {preview(info.columns, limit=20)}"
        )


def _check_info_values(info: pd.DataFrame, sample_column: str, columns: list[str]) -> None:
    """Every sample has an id (once) and a value in each required column: an empty batch
    would otherwise become a batch called 'nan'."""
    source = source_of(info)
    no_id = info.index[info[sample_column].isna()]
    if len(no_id):
        raise InputValidationError(
            f"{source}: column '{sample_column}' is empty on line(s) {preview(no_id + 2)}"
        )
    ids = info[sample_column].astype(str)
    duplicated = ids[ids.duplicated()]
    if len(duplicated):
        raise InputValidationError(
            f"{source}: samples {preview(duplicated.unique())} appear more than once in "
            f"column '{sample_column}'"
        )
    for column in columns:
        empty = ids[info[column].isna()]
        if len(empty):
            raise InputValidationError(
                f"{source}: column '{column}' is empty for samples {preview(empty)}"
            )


def _numeric_intensities(data: pd.DataFrame) -> pd.DataFrame:
    numeric = data.apply(pd.to_numeric, errors="coerce")
    not_numeric = numeric.isna() & data.notna()
    if not_numeric.to_numpy().any():
        feature, sample = next(iter(not_numeric.stack().loc[lambda s: s].index))
        n_bad = int(not_numeric.to_numpy().sum())
        raise InputValidationError(
            f"{source_of(data)}: {n_bad} non-numeric intensities, e.g. sample (column) "
            f"'{sample}', feature '{feature}': {data.loc[feature, sample]!r}"
        )
    values = numeric.to_numpy(dtype=float)
    if np.isinf(values).any():
        rows, cols = np.nonzero(np.isinf(values))
        raise InputValidationError(
            f"{source_of(data)}: infinite intensities in samples {preview(numeric.columns[cols])}"
        )
    if (values < 0).any():
        rows, cols = np.nonzero(values < 0)
        raise InputValidationError(
            f"{source_of(data)}: negative intensities for features "
            f"{preview(numeric.index[rows])} in samples {preview(numeric.columns[cols])}"
        )
    return numeric


def metabolomics_to_anndata(  # noqa: PLR0913
    data: pd.DataFrame,
    info: pd.DataFrame,
    feature_column: str = "feature",
    sample_column: str = "sample_id",
    batch_column: str = "batch",
    class_column: str = "class",
    order_column: str = "injection_order",
    qc_label: str = "QC",
) -> ad.AnnData:
    """Validate a data.csv/info.csv pair and join it into a samples × features AnnData.

    Zeros are treated as missing values (they are non-detections in MS data).
    ``obs`` keeps every info column, with ``batch`` as strings and a boolean ``is_qc``.

    Raises:
        InputValidationError: samples in one table but not the other, missing columns,
            non-numeric or negative intensities, a feature with no value at all, no QC
            samples, or a single batch. The message names the file and the values.
    """
    data_source, info_source = source_of(data), source_of(info)
    if feature_column in data.columns:
        data = data.set_index(feature_column)
    data.attrs["source_file"] = data_source
    duplicated = data.index[data.index.duplicated()]
    if len(duplicated):
        raise InputValidationError(f"{data_source}: duplicated features {preview(duplicated)}")
    _check_info_columns(info, [sample_column, batch_column, class_column, order_column])
    _check_info_values(info, sample_column, [batch_column, class_column, order_column])
    info = info.copy()
    info[sample_column] = info[sample_column].astype(str)
    data.columns = data.columns.astype(str)

    not_in_info = [s for s in data.columns if s not in set(info[sample_column])]
    if not_in_info:
        raise InputValidationError(
            f"{data_source}: samples {preview(not_in_info)} have no row in {info_source} "
            f"(column '{sample_column}')"
        )
    not_in_data = [s for s in info[sample_column] if s not in set(data.columns)]
    if not_in_data:
        raise InputValidationError(
            f"{info_source}: samples {preview(not_in_data)} (column '{sample_column}') "
            f"have no column in {data_source}"
        )
    order = pd.to_numeric(info[order_column], errors="coerce")
    if order.isna().any():
        bad = info.loc[order.isna(), order_column]
        raise InputValidationError(
            f"{info_source}: column '{order_column}' must be numeric, found {preview(bad)}"
        )
    if not info[class_column].astype(str).eq(qc_label).any():
        raise InputValidationError(
            f"{info_source}: no QC samples: column '{class_column}' has no '{qc_label}' value "
            f"(values: {preview(sorted(info[class_column].astype(str).unique()))})"
        )
    batches = info[batch_column].astype(str).unique()
    if len(batches) < 2:
        raise InputValidationError(
            f"{info_source}: one batch only in column '{batch_column}' "
            f"({preview(batches)}); batch correction needs at least two"
        )

    numeric = _numeric_intensities(data).replace(0.0, np.nan)
    empty = numeric.index[numeric.isna().all(axis=1)]
    if len(empty):
        raise InputValidationError(
            f"{data_source}: features {preview(empty)} have no value in any sample"
        )
    obs = info.set_index(sample_column).loc[numeric.columns]
    obs[batch_column] = obs[batch_column].astype(str)
    obs[order_column] = pd.to_numeric(obs[order_column])
    obs["is_qc"] = obs[class_column].astype(str).eq(qc_label)
    obs.index.name = None
    var = pd.DataFrame(index=numeric.index.astype(str))
    var.index.name = None
    adata = ad.AnnData(X=numeric.T.to_numpy(dtype=np.float64), obs=obs, var=var)
    adata.uns["source_file"] = data_source
    adata.uns["info_file"] = info_source
    return adata


def filter_features(
    adata: ad.AnnData, max_missing_fraction: float = 0.5, max_missing_fraction_qc: float = 0.5
) -> ad.AnnData:
    """Drop features missing in more than the given fraction of all samples or of QCs."""
    missing = np.isnan(adata.X)
    qc = adata.obs["is_qc"].to_numpy()
    keep = (missing.mean(axis=0) <= max_missing_fraction) & (
        missing[qc].mean(axis=0) <= max_missing_fraction_qc
    )
    if not keep.any():
        raise InputValidationError(
            f"{source_of(adata)}: every feature is missing in more than "
            f"{max_missing_fraction:.0%} of samples or {max_missing_fraction_qc:.0%} of QCs"
        )
    out = adata[:, keep].copy()
    out.uns["filter_features"] = {
        "kept": int(keep.sum()),
        "dropped": int((~keep).sum()),
        "max_missing_fraction": max_missing_fraction,
        "max_missing_fraction_qc": max_missing_fraction_qc,
    }
    return out


def impute_half_minimum(adata: ad.AnnData) -> ad.AnnData:
    """Fill missing values with half the feature's smallest observed value; the result
    (original intensity scale) is also kept in ``layers["intensity"]``."""
    values = adata.X.astype(np.float64, copy=True)
    half_min = np.nanmin(values, axis=0) / 2.0
    rows, cols = np.nonzero(np.isnan(values))
    values[rows, cols] = half_min[cols]
    out = adata.copy()
    out.X = values
    out.layers[INTENSITY_LAYER] = values.copy()
    out.uns["imputation"] = {"method": "half_minimum", "n_imputed": int(len(rows))}
    return out


def scale_features(adata: ad.AnnData, log: bool = False) -> ad.AnnData:
    """Optional natural log, then per-feature standardisation (mean 0, sd 1).

    Means and standard deviations go to ``var["scale_mean"]``/``var["scale_std"]`` and the
    transforms to ``uns["scaling"]``, so :func:`restore_original_scale` can undo them.
    """
    values = np.log(adata.X) if log else adata.X.astype(np.float64, copy=True)
    mean = values.mean(axis=0)
    std = values.std(axis=0, ddof=0)
    std[std == 0] = 1.0
    out = adata.copy()
    out.X = (values - mean) / std
    out.var["scale_mean"] = mean
    out.var["scale_std"] = std
    out.uns[SCALING_KEY] = {"log": bool(log), "standardised": True}
    return out


def restore_original_scale(values: np.ndarray, adata: ad.AnnData) -> np.ndarray:
    """Map values on the model's scale (standardised, possibly logged) back to intensities.

    Call this exactly once on model outputs; ``adata`` supplies the recorded transforms.
    """
    scaling = adata.uns.get(SCALING_KEY)
    if scaling is None:
        raise ValueError("AnnData has no uns['scaling']: it was not scaled by scale_features")
    restored = np.asarray(values, dtype=np.float64) * adata.var["scale_std"].to_numpy() + adata.var[
        "scale_mean"
    ].to_numpy()
    return np.exp(restored) if scaling["log"] else restored
