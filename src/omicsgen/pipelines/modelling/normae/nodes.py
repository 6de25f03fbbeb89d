"""NormAE nodes: check the input, train, correct (apply a saved model), ComBat, export tables.

Short calls into :class:`omicsgen.models.NormAE` (imported inside the functions: torch stays
out of the pipeline modules). ``correct`` reads the checkpoint back from ``06_models``, so
the training pipeline and ``normae_apply`` correct with a saved model the same way.
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
    """NormAE reads the dataset's batch, injection-order and class columns (``setup``: the
    arguments of ``NormAE.setup_anndata``); data engineering marks the QC samples in
    ``obs["is_qc"]``."""
    keys = dataset["keys"]
    return {
        **params,
        "setup": {"batch_key": keys["batch"], "order_key": keys["injection_order"], "qc_key": "is_qc"},
        "metrics": {**params["metrics"], "class_column": keys["class"]},
    }


def check_inputs(samples: ad.AnnData, params: dict[str, Any]) -> None:
    """The class labels the parameters name exist (obs only: runs on the raw sample
    annotations before a run, and in ``validate_normae_input``)."""
    check_class_labels(samples.obs, params["metrics"]["class_column"], params["metrics"].get("class_labels"))


def validate_normae_input(model_input: ad.AnnData, params: dict[str, Any]) -> ad.AnnData:
    """What NormAE and ComBat need beyond the data-engineering checks: the obs columns,
    :func:`check_inputs`, at least two QCs, and at least ``checks.min_samples_per_batch``
    samples in every batch."""
    setup, minimum = params["setup"], params["checks"]["min_samples_per_batch"]
    source = source_of(model_input)
    missing = [c for c in (*setup.values(), params["metrics"]["class_column"]) if c not in model_input.obs]
    if missing:
        raise InputValidationError(f"{source}: obs column(s) {preview(missing)} missing")
    check_inputs(model_input, params)
    n_qc = int(model_input.obs[setup["qc_key"]].astype(bool).sum())
    if n_qc < 2:
        raise InputValidationError(f"{source}: {n_qc} QC sample(s); NormAE needs at least two")
    sizes = model_input.obs[setup["batch_key"]].astype(str).value_counts()
    small = sizes[sizes < minimum]
    if len(small):
        raise InputValidationError(
            f"{source}: batches {preview(small.index)} (column '{setup['batch_key']}') have fewer than "
            f"{minimum} samples ({preview(small.to_numpy())})"
        )
    return model_input


def train(model_input: ad.AnnData, params: dict[str, Any]):
    """Train NormAE; returns the checkpoint, the training record, the loss history of every
    phase (``train.csv``), the configuration (``config.json``) and the kept epoch
    (``early_stop_info.json``)."""
    from omicsgen.models import NormAE

    NormAE.setup_anndata(model_input, **params["setup"])
    model = NormAE(model_input, model=params["model"], plan=params["plan"], training=params["training"])
    result = model.train(checkpoint_dir=params["checkpoint_dir"])
    checkpoint = model.checkpoint()
    config = {
        **checkpoint["config"],
        "setup": dict(params["setup"]),
        "device": result.device,
        "n_samples": model_input.n_obs,
        "n_features": model_input.n_vars,
        "batches": list(model.state["batch_categories"]),
        "scaling": dict(model_input.uns.get("scaling", {})),
        "data_file": params["dataset"]["files"]["data"],
        "info_file": params["dataset"]["files"]["info"],
    }
    early_stop_info = {**model.selected, "training_seconds": result.seconds}
    return checkpoint, result.to_dict(), pd.DataFrame(result.history), config, early_stop_info


def correct(model_input: ad.AnnData, checkpoint: dict[str, Any], params: dict[str, Any]) -> ad.AnnData:
    """Correct ``model_input`` with a saved NormAE model: the AnnData with the original,
    reconstructed and corrected intensities as layers (original scale, inverse transforms
    applied once) and the latent code in ``obsm["X_normae"]``. Features are matched by name;
    a batch the model was not trained on is an error naming it."""
    from omicsgen.models import NormAE

    start = time.perf_counter()
    device = NormAE.TrainingConfig.from_params(params["training"]).device
    model = NormAE.from_checkpoint(checkpoint, device=device)
    NormAE.setup_anndata(model_input, **params["setup"])  # this dataset's columns
    corrected = model.correct(model_input, key_added=CORRECTED)
    for layer in (RECONSTRUCTED, CORRECTED):
        corrected.layers[layer] = restore_original_scale(corrected.layers[layer], corrected)
    corrected.uns["normae"] = {
        "input_file": params["dataset"]["files"]["data"],
        "info_file": params["dataset"]["files"]["info"],
        "selected": model.selected,
        "seed": model.training_config.seed,
        "correct_seconds": time.perf_counter() - start,
    }
    return corrected


def apply(model_input: ad.AnnData, checkpoint: dict[str, Any], params: dict[str, Any]) -> tuple[ad.AnnData, pd.DataFrame]:
    """``normae_apply``: :func:`correct` with a saved model, and the corrected features ×
    samples table on the original scale (like ``Rec_nobe.csv``)."""
    applied = correct(model_input, checkpoint, params)
    return applied, _feature_table(applied.layers[CORRECTED], applied)


def combat(model_input: ad.AnnData, params: dict[str, Any]) -> pd.DataFrame:
    """Baseline: scanpy's ComBat on the same preprocessed X, back on the original scale
    (features × samples, like ``data.csv``)."""
    import scanpy as sc

    adjusted = sc.pp.combat(model_input, key=params["setup"]["batch_key"], inplace=False)
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
