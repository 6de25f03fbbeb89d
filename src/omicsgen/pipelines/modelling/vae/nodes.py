"""VAE nodes: short calls into :class:`omicsgen.models.VAE` and :mod:`omicsgen.clustering`.

Torch is imported inside the functions, so that loading the pipeline stays fast.
"""

from __future__ import annotations

from typing import Any

import anndata as ad

from omicsgen.preprocessing.validate import check_obs_columns

#: ``input`` keys → ``VAE.setup_anndata`` arguments
SETUP_KEYS = {
    "label_key": "cell_type_key", "layer": "layer", "split_key": "split_key", "counts_layer": "counts_layer",
    "batch_key": "batch_key",
}  # fmt: skip


def bind_dataset(params: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """The VAE's ``cells`` section for cell data (labels = the dataset's cell types), its
    ``binning`` section for sequences (labels parsed by the dataset's ``label_pattern``).

    The ``model``, ``plan`` and ``training`` sections are read by the VAE's dataclasses
    (unknown keys rejected before any node runs) and come back complete, defaults filled:
    the other nodes read ``training.seed`` and ``training.device`` from them.
    """
    from dataclasses import asdict

    from omicsgen.models.vae import VAE

    keys = dataset["keys"]
    if dataset["kind"] == "sequences":
        name, section = "binning", dict(params["binning"])
        section["kmers"] = {**section.get("kmers", {}), "label_pattern": keys.get("label_pattern")}
    else:
        name, section = "cells", dict(params["cells"])
        inputs = {**section.get("input", {}), "label_key": keys.get("cell_type")}
        # auto: the column whose differences cell-type clusters should ignore: the batches
        # (scrna_batches) or, for perturbation data, the condition (benchmarks/vae.md)
        if inputs.get("batch_key") == "auto":
            inputs["batch_key"] = keys.get("batch") or keys.get("condition")
        section["input"] = inputs
    return {
        **section,
        "model": asdict(VAE.ModelConfig.from_params(section.get("model"), f"vae.{name}.model")),
        "plan": asdict(VAE.PlanConfig.from_params(section.get("plan"), f"vae.{name}.plan")),
        "training": asdict(VAE.TrainingConfig.from_params(dict(section.get("training") or {}))),
    }


def setup_keys(section: dict[str, Any]) -> dict[str, Any]:
    """``VAE.setup_anndata``'s arguments from the ``input`` section (only those it names;
    the counts layer only for the count likelihood, so that data without one still runs)."""
    inputs = section.get("input", {})
    keys = {arg: inputs[key] for key, arg in SETUP_KEYS.items() if key in inputs}
    if (section.get("model") or {}).get("likelihood") != "negative_binomial":
        keys.pop("counts_layer", None)
    return keys


def registered(section: dict[str, Any]):
    """The keys ``VAE.setup_anndata`` will register (``AnnDataSetup``, defaults filled)."""
    from omicsgen.models.base import AnnDataSetup

    return AnnDataSetup(**setup_keys(section))


def check_inputs(cells: ad.AnnData, section: dict[str, Any]) -> None:
    """The label, batch and split columns (obs only)."""
    from omicsgen.models.base import split_masks

    setup = registered(section)
    check_obs_columns(cells, setup.columns(), fixed_by={
        setup.cell_type_key: "the dataset's keys.cell_type",
        setup.batch_key: "vae.cells.input.batch_key (auto: the dataset's keys.batch, or keys.condition)",
    })  # fmt: skip
    split_masks(cells, setup.split_key)


def choose_cells(cells: ad.AnnData, section: dict[str, Any]) -> ad.AnnData:
    """Check the cells to embed (labels, split, features) before any training."""
    from omicsgen.models.vae.model import check_counts_layer, check_features

    check_inputs(cells, section)
    check_features(cells, registered(section).layer)
    if section["model"]["likelihood"] == "negative_binomial":
        check_counts_layer(cells, registered(section).counts_layer)
    return cells


def train(features: ad.AnnData, settings: dict[str, Any]) -> tuple[dict, dict]:
    """Train the VAE → (checkpoint for ``TorchCheckpointDataset``, training record for JSON)."""
    from omicsgen.models.vae import VAE

    cells = features.copy()  # setup_anndata registers in uns: never in a node's input
    VAE.setup_anndata(cells, **setup_keys(settings))
    model = VAE(cells, settings["model"], settings["plan"], settings["training"])
    result = model.train(checkpoint_dir=settings["checkpoint_dir"])
    return model.checkpoint(), result.to_dict()


def embed(checkpoint: dict, features: ad.AnnData, settings: dict[str, Any]) -> ad.AnnData:
    """``features`` with the saved model's latent means in ``obsm["X_vae"]`` (features
    aligned by name)."""
    from omicsgen.models.vae import VAE

    return VAE.from_checkpoint(checkpoint, device=settings["training"]["device"]).embed(features)


def add_pca_baseline(embedded: ad.AnnData, settings: dict[str, Any]) -> ad.AnnData:
    """PCA of the same matrix the VAE saw into ``obsm["X_pca"]`` (the baseline)."""
    from omicsgen.clustering import pca_embedding
    from omicsgen.models.data import dense_matrix

    out = embedded.copy()
    matrix = dense_matrix(embedded, registered(settings).layer)
    out.obsm["X_pca"] = pca_embedding(matrix, **settings.get("baseline", {}), seed=settings["training"]["seed"])
    return out


def cluster(embedded: ad.AnnData, settings: dict[str, Any]) -> ad.AnnData:
    """kNN graph, UMAP, Leiden and HDBSCAN for the VAE latent and the PCA baseline alike.

    With a list of Leiden resolutions, each embedding keeps the one that best matches the
    known labels (same grid for both).
    """
    from omicsgen.clustering import cluster_embedding

    label_key = registered(settings).cell_type_key
    labels = embedded.obs[label_key] if label_key and label_key in embedded.obs else None
    out = embedded
    for name in ("vae", "pca"):
        out = cluster_embedding(
            out, name, **settings.get("clustering", {}), seed=settings["training"]["seed"], labels=labels
        )
    return out


def featurise_sequences(records: list, section: dict[str, Any]) -> ad.AnnData:
    """FASTA records → canonical k-mer composition scaled to [0, 1] (samples × k-mers).

    ``section["kmers"]``: ``k``, ``scale``, ``label_pattern``, ``min_length``; the true
    origin parsed by ``label_pattern`` goes to ``obs[section["input"]["label_key"]]``.
    """
    from omicsgen.preprocessing.sequences import sequences_to_anndata

    label_key = section.get("input", {}).get("label_key")
    return sequences_to_anndata(records, **section.get("kmers", {}), **({"label_key": label_key} if label_key else {}))
