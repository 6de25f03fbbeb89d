"""What a dataset run used, described from the data itself (for the report)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anndata as ad
import pandas as pd

from omicsgen.preprocessing.expression import COUNTS_KEY, resolve_held_out_types

#: kind → (what a row is, what a column is)
UNITS = {"metabolomics": ("samples", "features"), "sequences": ("reads", "k-mers")}
#: keys whose columns are group labels worth counting
GROUP_KEYS = ("condition", "batch", "cell_type", "class")


def _counts(values: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in values.astype(str).value_counts().sort_index().items()}


def describe_dataset(data: Any, dataset: Mapping[str, Any], holdout: Any = None) -> dict[str, Any]:
    """Files, size, group sizes and what was held out, for one dataset as a method saw it.

    ``data`` is the AnnData the method read (or, for sequences, the list of records);
    ``dataset`` the registry entry (``DatasetSpec.to_dict()``).
    """
    rows, columns = UNITS.get(dataset["kind"], ("cells", "genes"))
    description: dict[str, Any] = {
        "dataset": dataset["name"],
        "kind": dataset["kind"],
        "description": dataset.get("description", ""),
        "files": list(dataset["files"].values()),
        "obs_label": rows,
        "var_label": columns,
    }
    if not isinstance(data, ad.AnnData):  # sequence records
        description["n_obs"] = len(data)
        return description
    description.update(n_obs=int(data.n_obs), n_vars=int(data.n_vars))
    keys = dataset["keys"]
    groups = {}
    for role in GROUP_KEYS:
        column = keys.get(role)
        if column and column in data.obs:
            groups[column] = _counts(data.obs[column])
    description["groups"] = groups
    if dataset["kind"] == "metabolomics" and "is_qc" in data.obs:
        description["n_qc"] = int(data.obs["is_qc"].sum())
        description["input_scale"] = str(data.uns.get("input_scale", "intensity"))
    counts = data.uns.get(COUNTS_KEY)
    if counts is not None:
        description["counts_from"] = counts.get("source") or "none found"
    if holdout is not None and keys.get("cell_type") in data.obs:
        description["held_out"] = resolve_held_out_types(data.obs[keys["cell_type"]], holdout)
    return description
