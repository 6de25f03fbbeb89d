"""Data-engineering nodes: parameter dictionaries in, ``omicsgen.preprocessing`` calls out."""

from __future__ import annotations

from typing import Any

import anndata as ad
import pandas as pd

from omicsgen import preprocessing as pp


def validate_cells(adata: ad.AnnData, params: dict[str, Any]) -> ad.AnnData:
    return pp.validate_single_cell(
        adata,
        required_obs=params.get("required_obs", ()),
        min_categories=params.get("min_categories"),
        counts_layer=params.get("counts_layer"),
    )


def subsample(adata: ad.AnnData, params: dict[str, Any]) -> ad.AnnData:
    return pp.subsample_cells(adata, **params)


def filter_cells_and_genes(adata: ad.AnnData, params: dict[str, Any]) -> ad.AnnData:
    return pp.filter_cells_and_genes(adata, **params)


def normalise(adata: ad.AnnData, params: dict[str, Any]) -> ad.AnnData:
    return pp.normalise_expression(adata, **params)


def select_genes(adata: ad.AnnData, params: dict[str, Any]) -> ad.AnnData:
    return pp.select_highly_variable_genes(adata, **params)


def split(adata: ad.AnnData, params: dict[str, Any]) -> ad.AnnData:
    return pp.split_train_validation(adata, **params)


def balance(adata: ad.AnnData, params: dict[str, Any]) -> ad.AnnData:
    return pp.balance_by_cell_type(adata, **params)


def hold_out_perturbed_cells(
    adata: ad.AnnData, params: dict[str, Any]
) -> tuple[ad.AnnData, ad.AnnData]:
    return pp.hold_out_condition(adata, **params)


def build_metabolomics_table(
    data: pd.DataFrame, info: pd.DataFrame, params: dict[str, Any]
) -> ad.AnnData:
    return pp.metabolomics_to_anndata(data, info, **params)


def filter_features(adata: ad.AnnData, params: dict[str, Any]) -> ad.AnnData:
    return pp.filter_features(adata, **params)


def impute_missing(adata: ad.AnnData) -> ad.AnnData:
    return pp.impute_half_minimum(adata)


def scale_features(adata: ad.AnnData, params: dict[str, Any]) -> ad.AnnData:
    return pp.scale_features(adata, **params)
