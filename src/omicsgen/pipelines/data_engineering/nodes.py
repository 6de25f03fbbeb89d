"""Data-engineering nodes: a dataset's settings in, ``omicsgen.preprocessing`` calls out.

Every node of a dataset's namespace takes ``settings``: the kind's defaults from
``data_engineering.yml`` with the dataset entry's ``preprocessing`` overrides and its keys
(``dataset_settings``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import anndata as ad
import pandas as pd

from omicsgen import preprocessing as pp
from omicsgen.preprocessing.validate import (
    InputValidationError,
    check_categories_present,
    check_min_categories,
    check_obs_columns,
)
from omicsgen.registry import spec_of

#: kind → the section of data_engineering.yml that holds its defaults
TEMPLATE_OF_KIND = {
    "perturbation": "single_cell", "scrna_batches": "single_cell", "cell_table": "single_cell",
    "metabolomics": "metabolomics", "sequences": "sequences",
}  # fmt: skip


def deep_merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in, nested mappings key by key."""
    merged = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def dataset_settings(defaults: Mapping[str, Any], entry: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The kind's defaults, the dataset's ``preprocessing`` overrides, its keys and files."""
    dataset = spec_of(name, entry).to_dict()
    section = defaults.get(TEMPLATE_OF_KIND[dataset["kind"]], {})
    unknown = sorted(set(dataset.get("preprocessing") or {}) - set(section))
    if unknown:
        raise InputValidationError(
            f"datasets.{dataset['name']}.preprocessing: unknown step(s) {unknown}; "
            f"a {dataset['kind']} dataset has {sorted(section)} (data_engineering.yml)"
        )
    settings = deep_merge(section, dataset.get("preprocessing") or {})
    return {**settings, "dataset": dict(dataset), "keys": dict(dataset["keys"])}


def settings_of(name: str):
    """:func:`dataset_settings` for one dataset, as a node function (its name bound)."""

    def dataset_settings_of(defaults: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
        return dataset_settings(defaults, entry, name)

    return dataset_settings_of


def _grouping_key(settings: Mapping[str, Any]) -> str:
    """Cells are subsampled and split within batches (batch data) or cell types."""
    keys = settings["keys"]
    return keys.get("batch") or keys["cell_type"]


def check_keys(adata: ad.AnnData, settings: dict[str, Any]) -> None:
    """The key columns of the kind exist without missing values, with two conditions or
    batches and the control and stimulated values (obs only)."""
    keys, kind, name = settings["keys"], settings["dataset"]["kind"], settings["dataset"]["name"]
    columns = [keys[k] for k in ("condition", "batch", "cell_type") if keys.get(k)]
    try:
        check_obs_columns(adata, columns)
    except InputValidationError as error:
        raise InputValidationError(f"{error}; name the right columns in datasets.{name}.keys") from None
    check_min_categories(adata, {keys[k]: 2 for k in ("condition", "batch") if keys.get(k)})
    if kind == "perturbation":
        for role in ("control", "stimulated"):
            check_categories_present(
                adata, keys["condition"], [keys[role]], what=f"{role} condition (datasets.{name}.keys.{role})"
            )


def validate_cells(adata: ad.AnnData, settings: dict[str, Any]) -> ad.AnnData:
    """The keys (:func:`check_keys`), unique names, finite values, and the raw counts found
    (``keys.counts: auto``) and checked."""
    check_keys(adata, settings)
    checked = pp.validate_single_cell(adata)
    name = settings["dataset"]["name"]
    return pp.locate_counts(checked, settings["keys"].get("counts", "auto"), parameter=f"datasets.{name}.keys.counts")


def subsample(adata: ad.AnnData, settings: dict[str, Any]) -> ad.AnnData:
    return pp.subsample_cells(adata, **settings["subsample"], stratify_key=_grouping_key(settings))


def filter_cells_and_genes(adata: ad.AnnData, settings: dict[str, Any]) -> ad.AnnData:
    return pp.filter_cells_and_genes(adata, **settings["qc"])


def normalise(adata: ad.AnnData, settings: dict[str, Any]) -> ad.AnnData:
    return pp.normalise_expression(adata, **settings["normalisation"], counts_layer="counts")


def select_genes(adata: ad.AnnData, settings: dict[str, Any]) -> ad.AnnData:
    return pp.select_highly_variable_genes(adata, **settings["hvg"], batch_key=settings["keys"].get("batch"))


def split(adata: ad.AnnData, settings: dict[str, Any]) -> ad.AnnData:
    return pp.split_train_validation(adata, **settings["split"], stratify_key=_grouping_key(settings))


def build_metabolomics_table(data: pd.DataFrame, info: pd.DataFrame, settings: dict[str, Any]) -> ad.AnnData:
    keys = settings["keys"]
    return pp.metabolomics_to_anndata(
        data, info,
        feature_column=keys["feature"], sample_column=keys["sample"], batch_column=keys["batch"],
        class_column=keys["class"], order_column=keys["injection_order"], qc_label=keys["qc_label"],
        duplicates=settings["duplicates"], input_scale=settings["input_scale"],
    )  # fmt: skip


def filter_features(adata: ad.AnnData, settings: dict[str, Any]) -> ad.AnnData:
    return pp.filter_features(adata, **settings["feature_filter"])


def impute_missing(adata: ad.AnnData) -> ad.AnnData:
    return pp.impute_half_minimum(adata)


def scale_features(adata: ad.AnnData, settings: dict[str, Any]) -> ad.AnnData:
    return pp.scale_features(adata, **settings["scaling"])
