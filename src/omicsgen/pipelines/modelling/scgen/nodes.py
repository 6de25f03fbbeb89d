"""scGen modelling nodes: short calls into :class:`omicsgen.models.ScGen`.

One model is trained per held-out cell type (``holdout: all`` trains one per type), each
on every cell except that type's stimulated cells, split train/validation by
``obs["split"]``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anndata as ad

from omicsgen.metrics.perturbation import cells_of
from omicsgen.preprocessing import InputValidationError, hold_out_condition
from omicsgen.preprocessing.expression import resolve_held_out_types
from omicsgen.preprocessing.validate import source_of


def bind_dataset(params: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """scGen reads the dataset's condition, control/stimulated values and cell type
    (``keys``: the arguments of ``ScGen.setup_anndata``)."""
    keys = dataset["keys"]
    return {
        **params,
        "keys": {
            "condition_key": keys["condition"], "control": str(keys["control"]),
            "stimulated": str(keys["stimulated"]), "cell_type_key": keys["cell_type"],
        },
    }  # fmt: skip


def residual_prediction(params: dict[str, Any]) -> bool:
    """``scgen.residual`` (its one default is in conf/base/parameters/scgen.yml), checked: the
    training pipeline checks it before training, ``scgen_apply`` before predicting."""
    if not isinstance(params["residual"], bool):
        raise InputValidationError(f"parameter scgen.residual must be true or false, got {params['residual']!r}")
    return params["residual"]


def held_out_cell_types(adata: ad.AnnData, params: dict[str, Any]) -> list[str]:
    """Resolve ``holdout`` (a cell type, a list, ``"all"`` or ``"largest"``) and check every
    input scGen's evaluation needs, before anything is trained."""
    from omicsgen.models.scgen import check_perturbation_inputs

    keys = params["keys"]
    residual_prediction(params)
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
    """Train one scGen per held-out type; returns ``{type: ScGen.checkpoint()}`` (each with
    its ``delta``) and the training records (config, seed, history, timing) per type."""
    from omicsgen.models import ScGen

    checkpoints, records = {}, {}
    for cell_type in held_out:
        train = _training_cells(adata, cell_type, params["keys"])
        ScGen.setup_anndata(train, **params["keys"])
        model = ScGen(train, params["model"], params["plan"], params["training"])
        records[cell_type] = model.train(checkpoint_dir=Path(params["checkpoint_dir"]) / cell_type).to_dict()
        checkpoints[cell_type] = model.checkpoint()
    return checkpoints, records


def _concatenate(parts: list[ad.AnnData]) -> ad.AnnData:
    return ad.concat(parts, merge="same", uns_merge=None, index_unique="-")


def predict_held_out(adata: ad.AnnData, checkpoints: dict[str, Any], params: dict[str, Any]) -> ad.AnnData:
    """Each saved model's held-out type: its control cells in ``adata`` shifted by the
    model's ``delta`` (from the saved checkpoint, so a reloaded model gives these exact
    predictions). Genes are matched to the model's by name. Also the ``scgen_apply``
    template's node (the saved models applied to another dataset's cells)."""
    from omicsgen.models import ScGen

    ScGen.setup_anndata(adata, **params["keys"])  # this dataset's columns
    parts, deltas = [], {}
    residual = residual_prediction(params)
    for cell_type, checkpoint in checkpoints.items():
        model = ScGen.from_checkpoint(checkpoint, device=params["training"]["device"])
        predicted = model.predict(adata, cell_type=cell_type, residual=residual)
        predicted.obs["held_out"] = cell_type
        predicted.obs["method"] = "scgen"
        parts.append(predicted)
        deltas[cell_type] = model.delta
    out = _concatenate(parts)
    out.uns["scgen"] = {"delta": deltas, "residual": residual}
    return out


def predict_baselines(adata: ad.AnnData, held_out: list[str], params: dict[str, Any]) -> ad.AnnData:
    """Gene-space and PCA-space vector arithmetic, the mean response (other types' own
    stimulated − control shifts, equally weighted) and the null prediction, per held-out
    type, from the same training cells (and, for the arithmetic, balanced pools) as scGen."""
    from omicsgen.models.base import split_masks
    from omicsgen.models.baselines import perturbation as baselines

    keys, evaluation, seed = params["keys"], params["evaluation"], params["training"]["seed"]
    parts, fits = [], {}
    for cell_type in held_out:
        train = _training_cells(adata, cell_type, keys)
        control = cells_of(adata, cell_type, keys["control"], **keys)
        predictions, fits[cell_type] = baselines.predict_from_training_cells(
            train, control, keys, evaluation["pca_components"], seed, rows=split_masks(train, "split")[0]
        )
        for predicted in predictions:
            predicted.obs["held_out"] = cell_type
            parts.append(predicted)
    out = _concatenate(parts)
    out.uns["baselines"] = {"pca_fit": fits}
    return out
