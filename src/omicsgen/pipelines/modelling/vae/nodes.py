"""VAE nodes: thin wrappers of ``omicsgen.models.vae`` / ``omicsgen.models.clustering``.

Torch is imported inside the functions, so that loading the pipeline stays fast.
"""

from __future__ import annotations

from typing import Any

import anndata as ad

from omicsgen.preprocessing.validate import InputValidationError, check_obs_columns, source_of


def bind_dataset(params: dict[str, Any], dataset: dict[str, Any]) -> dict[str, Any]:
    """The VAE's ``cells`` section for cell data (labels = the dataset's cell types), its
    ``binning`` section for sequences (labels parsed by the dataset's ``label_pattern``)."""
    keys = dataset["keys"]
    if dataset["kind"] == "sequences":
        section = dict(params["binning"])
        section["kmers"] = {**section.get("kmers", {}), "label_pattern": keys.get("label_pattern")}
    else:
        section = dict(params["cells"])
        section["input"] = {**section.get("input", {}), "label_key": keys.get("cell_type")}
    return {**section, "seed": params["seed"], "device": params["device"]}


def check_inputs(cells: ad.AnnData, section: dict[str, Any]) -> None:
    """The label and split columns (obs only)."""
    params = section.get("input", {})
    label_key, split_key = params.get("label_key"), params.get("split_key")
    if label_key:
        check_obs_columns(cells, [label_key])
    if split_key and split_key in cells.obs:
        unknown = sorted(set(cells.obs[split_key].astype(str)) - {"train", "validation"})
        if unknown:
            raise InputValidationError(
                f"{source_of(cells)}: obs column '{split_key}' may only hold 'train' or "
                f"'validation'; found {unknown}"
            )


def choose_cells(cells: ad.AnnData, section: dict[str, Any]) -> ad.AnnData:
    """Check the cells to embed (labels, split, features) before any training."""
    from omicsgen.models.vae import check_features

    check_inputs(cells, section)
    check_features(cells, section.get("input", {}).get("layer"))
    return cells


def train(cells: ad.AnnData, params: dict[str, Any]) -> tuple[dict, dict]:
    """Train the VAE → (checkpoint for ``TorchCheckpointDataset``, training record for JSON)."""
    from omicsgen.models.vae import train_vae, vae_checkpoint

    training = {**params.get("training", {}), "seed": params["seed"], "device": params["device"]}
    modules, config, result = train_vae(
        cells,
        model=params.get("model"),
        loss=params.get("loss"),
        training=training,
        split_key=params.get("input", {}).get("split_key"),
        layer=params.get("input", {}).get("layer"),
    )
    checkpoint = vae_checkpoint(
        modules, config, cells.var_names, loss=dict(params.get("loss", {})), layer=params.get("input", {}).get("layer")
    )
    return checkpoint, result.to_dict()


def transform(checkpoint: dict, cells: ad.AnnData, params: dict[str, Any]) -> ad.AnnData:
    """Embed cells with a saved model into ``obsm["X_vae"]`` (features aligned by name)."""
    from omicsgen.models.vae import embed

    out = cells.copy()
    out.obsm["X_vae"] = embed(checkpoint, cells, layer=checkpoint.get("layer"), device=params["device"])
    return out


def add_pca_baseline(embedded: ad.AnnData, params: dict[str, Any]) -> ad.AnnData:
    """PCA of the same matrix the VAE saw into ``obsm["X_pca"]`` (the baseline)."""
    from omicsgen.models.clustering import pca_embedding
    from omicsgen.models.data import dense_matrix

    out = embedded.copy()
    out.obsm["X_pca"] = pca_embedding(
        dense_matrix(embedded, params.get("input", {}).get("layer")),
        params.get("baseline", {}).get("n_components", 50),
        params["seed"],
    )
    return out


def cluster(embedded: ad.AnnData, params: dict[str, Any]) -> ad.AnnData:
    """kNN graph, UMAP, Leiden and HDBSCAN for the VAE latent and the PCA baseline alike.

    With a list of Leiden resolutions, each embedding keeps the one that best matches the
    known labels (same grid for both).
    """
    from omicsgen.models.clustering import cluster_embedding

    settings = {**params.get("clustering", {}), "seed": params["seed"]}
    label_key = params.get("input", {}).get("label_key")
    labels = embedded.obs[label_key] if label_key and label_key in embedded.obs else None
    out = embedded
    for name in ("vae", "pca"):
        out = cluster_embedding(out, name, settings, labels=labels)
    return out


def featurise_sequences(records: list, section: dict[str, Any]) -> ad.AnnData:
    """FASTA records → canonical k-mer composition scaled to [0, 1] (samples × k-mers).

    ``section["kmers"]``: ``k``, ``scale``, ``label_pattern``, ``min_length``; the true
    origin parsed by ``label_pattern`` goes to ``obs[section["input"]["label_key"]]``.
    """
    from omicsgen.preprocessing.sequences import sequences_to_anndata

    label_key = section.get("input", {}).get("label_key") or "source"
    return sequences_to_anndata(records, **section.get("kmers", {}), label_key=label_key)
