"""Checks that can fail, run on every dataset of a run before its first node.

Each method's own checks (``check_inputs`` of its modelling package) and the data
engineering's key checks also run inside the pipelines, on the data as it arrives there;
running them here first, on the raw files' sample annotations alone, means a wrong column
name or a held-out type that does not exist stops a run of many datasets and methods
before anything trains or is written — not after another method's hour of training.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import anndata as ad
import pandas as pd

from omicsgen.pipelines.data_engineering.nodes import check_keys, dataset_settings
from omicsgen.pipelines.methods import discover_methods, resolve_parameters
from omicsgen.preprocessing.validate import SOURCE_FILE_KEY

logger = logging.getLogger(__name__)


def read_annotations(spec: Any) -> ad.AnnData | None:
    """The sample annotations of a declared dataset's raw file (obs of an h5ad without its
    matrix, a metabolomics info table), as an AnnData without features; None for data that
    has none to check here (sequences, cell tables)."""
    from kedro.io import DatasetError

    path = spec.files["info"] if spec.kind == "metabolomics" else spec.file
    if spec.kind != "metabolomics" and not path.lower().endswith(".h5ad"):
        return None
    if not Path(path).is_file():  # as the {dataset}.raw loader words it
        raise DatasetError(f"datasets.{spec.name}: file {path} does not exist; fix the path in datasets.yml")
    if spec.kind == "metabolomics":
        info = pd.read_csv(path)
        sample = spec.keys["sample"]
        obs = info.set_index(sample) if sample in info.columns else info
    else:
        import h5py
        from anndata.io import read_elem

        try:
            with h5py.File(path, "r") as handle:
                obs = read_elem(handle["obs"])
        except Exception as err:  # h5py raises OSError, anndata KeyError/ValueError
            raise DatasetError(
                f"Could not read '{path}' (datasets.{spec.name}) as an h5ad file ({type(err).__name__}: {err}). "
                "The file is corrupt, truncated or not written by anndata."
            ) from err
    obs.index = obs.index.astype(str)
    annotations = ad.AnnData(obs=obs)
    annotations.uns[SOURCE_FILE_KEY] = path
    return annotations


def check_run(pipeline: Any, load_parameter) -> list[str]:
    """Run every dataset's and every (dataset, method)'s checks for the nodes of ``pipeline``;
    ``load_parameter(name)`` gives ``params:<name>``. Returns the checked namespaces."""
    from omicsgen.registry import active_registry

    registry = active_registry()
    methods = discover_methods()
    namespaces = sorted({node.namespace for node in pipeline.nodes if node.namespace})
    checked = []
    for dataset in sorted({ns.split(".")[0] for ns in namespaces} & set(registry)):
        spec = registry[dataset]
        annotations = read_annotations(spec)
        if annotations is None:
            continue
        entry = load_parameter(f"datasets.{dataset}")
        if spec.kind != "metabolomics":
            check_keys(annotations, dataset_settings(load_parameter("data_engineering"), entry, dataset))
        checked.append(dataset)
        for namespace in namespaces:
            method = methods.get(namespace.removeprefix(f"{dataset}."))
            if not namespace.startswith(f"{dataset}.") or method is None:
                continue
            module = method.module
            settings = resolve_parameters(load_parameter(method.name), entry, method.name, dataset, module.bind_dataset)
            module.check_inputs(annotations, settings)
            checked.append(namespace)
    if checked:
        logger.info("checked before running: %s", ", ".join(checked))
    return checked
