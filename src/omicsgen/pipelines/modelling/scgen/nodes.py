"""scGen modelling nodes: thin wrappers over ``omicsgen.models.scgen``.

One model is trained per held-out cell type (``holdout: all`` trains one per type), each
on every cell except that type's stimulated cells, split train/validation by
``obs["split"]``.
"""

from __future__ import annotations

from typing import Any

import anndata as ad

from omicsgen.metrics.perturbation import cells_of
from omicsgen.preprocessing import InputValidationError, hold_out_condition
from omicsgen.preprocessing.expression import resolve_held_out_types
from omicsgen.preprocessing.validate import source_of


def bind_dataset(params: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """scGen reads the dataset's condition, control/stimulated values and cell type."""
    keys = dataset["keys"]
    return {
        **params,
        "keys": {
            "condition_key": keys["condition"], "control": str(keys["control"]),
            "stimulated": str(keys["stimulated"]), "cell_type_key": keys["cell_type"],
        },
    }  # fmt: skip


def held_out_cell_types(adata: ad.AnnData, params: dict[str, Any]) -> list[str]:
    """Resolve ``holdout`` (a cell type, a list, ``"all"`` or ``"largest"``) and check every
    input scGen's evaluation needs, before anything is trained."""
    from omicsgen.models.scgen import check_perturbation_inputs

    keys = params["keys"]
    if keys["cell_type_key"] not in adata.obs:
        raise InputValidationError(
            f"{source_of(adata)}: cell type column '{keys['cell_type_key']}' missing from obs "
            f"(datasets.{params['dataset']['name']}.keys.cell_type)"
        )
    types = resolve_held_out_types(adata.obs[keys["cell_type_key"]], params["holdout"])
    if not types:
        raise InputValidationError("parameter scgen.holdout names no cell type")
    try:
        check_perturbation_inputs(adata, types, **keys)
    except InputValidationError as error:
        raise InputValidationError(
            f"{error} (set scgen.holdout, or scgen.overrides.{params['dataset']['name']}.holdout for this dataset only)"
        ) from None
    return types


def _training_cells(adata: ad.AnnData, cell_type: str, keys: dict[str, str]) -> ad.AnnData:
    train, _ = hold_out_condition(
        adata, cell_type, keys["stimulated"], keys["cell_type_key"], keys["condition_key"]
    )
    return train


def train_models(adata: ad.AnnData, held_out: list[str], params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Train one scGen per held-out type; returns the checkpoint (models + deltas) and the
    training records (config, seed, history, timing) per type."""
    from omicsgen.models.scgen import build_checkpoint, latent_delta, train_scgen

    keys, model, training, seed, device = (
        params["keys"], params["model"], params["training"], params["seed"], params["device"]
    )
    models, deltas, records = {}, {}, {}
    for cell_type in held_out:
        train = _training_cells(adata, cell_type, keys)
        models[cell_type], result = train_scgen(
            train, **model, **training, seed=seed, device=device, description=f"scgen[{cell_type}]"
        )
        # delta from the cells the model trained on (the validation split only scores it)
        fitted = train[train.obs["split"].astype(str).to_numpy() == "train"] if "split" in train.obs else train
        deltas[cell_type] = latent_delta(models[cell_type], fitted, **keys, seed=seed)
        records[cell_type] = result.to_dict()
    checkpoint = build_checkpoint(
        models, adata.var_names, deltas, keys=dict(keys), training=dict(training), seed=seed
    )
    return checkpoint, records


def _control_cells(adata: ad.AnnData, cell_type: str, keys: dict[str, str]) -> ad.AnnData:
    return cells_of(adata, cell_type, keys["control"], **keys)


def _concatenate(parts: list[ad.AnnData]) -> ad.AnnData:
    return ad.concat(parts, merge="same", uns_merge=None, index_unique="-")


def predict_held_out(adata: ad.AnnData, checkpoint: dict[str, Any], params: dict[str, Any]) -> ad.AnnData:
    """Each held-out type's control cells shifted by its model's ``delta`` (from the saved
    checkpoint, so a reloaded model gives these exact predictions)."""
    from omicsgen.models.scgen import apply_delta, restore_checkpoint

    keys = params["keys"]
    models, deltas = restore_checkpoint(checkpoint, device=params["device"])
    parts = []
    for cell_type, model in models.items():
        predicted = apply_delta(model, _control_cells(adata, cell_type, keys), deltas[cell_type], checkpoint["genes"])
        predicted.obs["held_out"] = cell_type
        predicted.obs["method"] = "scgen"
        parts.append(predicted)
    out = _concatenate(parts)
    out.uns["scgen"] = {"delta": {t: deltas[t] for t in models}}
    return out


def predict_baselines(adata: ad.AnnData, held_out: list[str], params: dict[str, Any]) -> ad.AnnData:
    """Gene-space and PCA-space vector arithmetic and the null prediction, per held-out
    type, from the same training cells and balanced pools as scGen."""
    from omicsgen.models import perturbation_baselines as baselines

    keys, evaluation, seed = params["keys"], params["evaluation"], params["seed"]
    parts = []
    for cell_type in held_out:
        train = _training_cells(adata, cell_type, keys)
        if "split" in train.obs:
            train = train[train.obs["split"].astype(str).to_numpy() == "train"]
        control_pool, stimulated_pool = baselines.balanced_condition_pools(train, **keys, seed=seed)
        control = _control_cells(adata, cell_type, keys)
        for predicted in (
            baselines.gene_space_arithmetic(control_pool, stimulated_pool, control),
            baselines.pca_space_arithmetic(
                train, control_pool, stimulated_pool, control, evaluation["pca_components"], seed
            ),
            baselines.null_prediction(control),
        ):
            predicted.obs["held_out"] = cell_type
            parts.append(predicted)
    return _concatenate(parts)
