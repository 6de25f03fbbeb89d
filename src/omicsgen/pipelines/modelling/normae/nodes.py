"""NormAE nodes: check the input, train, remove (apply a saved model), ComBat, export tables.

The two tasks of the original command line map to ``train`` and ``remove``; ``remove``
reads the checkpoint back from ``06_models`` so it works with any saved model. Torch is
imported inside the functions that need it (through ``omicsgen.models.normae``).
"""

from __future__ import annotations

import time
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from omicsgen.metrics.metabolomics import check_class_labels
from omicsgen.preprocessing import restore_original_scale
from omicsgen.preprocessing.validate import InputValidationError, preview, source_of

#: layers of the ``corrected`` AnnData, all on the original intensity scale
ORIGINAL, RECONSTRUCTED, CORRECTED, COMBAT = "intensity", "normae_reconstructed", "normae_corrected", "combat_corrected"
LATENT = "X_normae"


def bind_dataset(params: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """NormAE reads the dataset's batch, injection-order and class columns; data
    engineering marks the QC samples in ``obs["is_qc"]``."""
    keys = dataset["keys"]
    return {
        **params,
        "keys": {"batch": keys["batch"], "order": keys["injection_order"], "qc": "is_qc"},
        "metrics": {**params["metrics"], "class_column": keys["class"]},
    }


def check_inputs(samples: ad.AnnData, params: dict[str, Any]) -> None:
    """The class labels the parameters name exist (obs only)."""
    check_class_labels(samples.obs, params["metrics"]["class_column"], params["metrics"].get("class_labels"))


def validate_normae_input(model_input: ad.AnnData, params: dict[str, Any]) -> ad.AnnData:
    """What NormAE and ComBat need beyond the data-engineering checks: the obs columns,
    at least two QCs, and at least ``min_samples_per_batch`` samples in every batch."""
    keys = params["keys"]
    source = source_of(model_input)
    missing = [c for c in (*keys.values(), params["metrics"]["class_column"]) if c not in model_input.obs]
    if missing:
        raise InputValidationError(f"{source}: obs column(s) {preview(missing)} missing")
    check_inputs(model_input, params)
    n_qc = int(model_input.obs[keys["qc"]].astype(bool).sum())
    if n_qc < 2:
        raise InputValidationError(f"{source}: {n_qc} QC sample(s); NormAE needs at least two")
    sizes = model_input.obs[keys["batch"]].astype(str).value_counts()
    small = sizes[sizes < params["min_samples_per_batch"]]
    if len(small):
        raise InputValidationError(
            f"{source}: batches {preview(small.index)} (column '{keys['batch']}') have fewer than "
            f"{params['min_samples_per_batch']} samples ({preview(small.to_numpy())})"
        )
    return model_input


def train(model_input: ad.AnnData, params: dict[str, Any]):
    """Train NormAE; returns the checkpoint, the training record, the loss history
    (``train.csv``), the configuration (``config.json``) and the selected epoch
    (``early_stop_info.json``)."""
    from omicsgen.models.normae import history_table, train_normae

    model, record = train_normae(
        model_input,
        network=params["network"],
        training=params["training"],
        seed=params["seed"],
        device=params["device"],
        keys=params["keys"],
    )
    config = {
        "seed": params["seed"],
        "device": record["device"],
        "keys": dict(params["keys"]),
        "network": record["network"],
        "training": record["training"],
        "n_samples": model_input.n_obs,
        "n_features": model_input.n_vars,
        "batches": model.batch_categories,
        "scaling": dict(model_input.uns.get("scaling", {})),
        "data_file": params["dataset"]["files"]["data"],
        "info_file": params["dataset"]["files"]["info"],
    }
    early_stop_info = {**record["selected"], "training_seconds": record["seconds"]}
    checkpoint = model.checkpoint(selected=dict(record["selected"]), seed=params["seed"])
    return checkpoint, record, history_table(record), config, early_stop_info


def remove(model_input: ad.AnnData, checkpoint: dict[str, Any], params: dict[str, Any]) -> ad.AnnData:
    """Apply a saved NormAE model: the AnnData with the original, reconstructed and corrected
    intensities as layers (original scale, inverse transforms applied once) and the latent
    code in ``obsm["X_normae"]``."""
    from omicsgen.models.normae import NormAEModel, remove_batch_effects

    start = time.perf_counter()
    outputs = remove_batch_effects(NormAEModel.from_checkpoint(checkpoint), model_input, params["device"])
    corrected = model_input.copy()
    corrected.layers[RECONSTRUCTED] = restore_original_scale(outputs["reconstructed"], model_input)
    corrected.layers[CORRECTED] = restore_original_scale(outputs["corrected"], model_input)
    corrected.obsm[LATENT] = outputs["latent"]
    corrected.uns["normae"] = {
        "input_file": params["dataset"]["files"]["data"],
        "info_file": params["dataset"]["files"]["info"],
        "selected": dict(checkpoint.get("selected", {})),
        "remove_seconds": time.perf_counter() - start,
    }
    return corrected


def combat(model_input: ad.AnnData, params: dict[str, Any]) -> pd.DataFrame:
    """Baseline: scanpy's ComBat on the same preprocessed X, back on the original scale
    (features × samples, like ``data.csv``)."""
    import scanpy as sc

    adjusted = sc.pp.combat(model_input, key=params["keys"]["batch"], inplace=False)
    return _feature_table(restore_original_scale(adjusted, model_input), model_input)


def _feature_table(values: np.ndarray, adata: ad.AnnData) -> pd.DataFrame:
    """samples × features values as a features × samples table with a ``feature`` column."""
    table = pd.DataFrame(np.asarray(values).T, index=adata.var_names, columns=adata.obs_names)
    return table.rename_axis("feature").reset_index()


def export_tables(corrected: ad.AnnData):
    """The original NormAE outputs: ``Ori``, ``Ys``, ``Rec``, ``Codes``, ``Rec_nobe``."""
    ys = corrected.obs.drop(columns=["is_qc"], errors="ignore").rename_axis("sample_id").reset_index()
    codes = pd.DataFrame(
        corrected.obsm[LATENT],
        index=pd.Index(corrected.obs_names, name="sample_id"),
        columns=[f"latent_{i}" for i in range(corrected.obsm[LATENT].shape[1])],
    ).reset_index()
    return (
        _feature_table(corrected.layers[ORIGINAL], corrected),
        ys,
        _feature_table(corrected.layers[RECONSTRUCTED], corrected),
        codes,
        _feature_table(corrected.layers[CORRECTED], corrected),
    )


def table_values(table: pd.DataFrame, adata: ad.AnnData) -> np.ndarray:
    """A features × samples table (``feature`` column first) as samples × features,
    in ``adata``'s sample and feature order."""
    frame = table.set_index("feature")
    frame.index = frame.index.astype(str)
    return frame.loc[adata.var_names, adata.obs_names].to_numpy(dtype=np.float64).T
