"""VAE reporting nodes: clustering scores against known labels, UMAP and training figures."""

from __future__ import annotations

from typing import Any

import anndata as ad

from omicsgen.metrics.clustering import agreement, bin_purity, label_silhouette
from omicsgen.metrics.degenerate import degenerate_settings
from omicsgen.plots import vae as plots

EMBEDDINGS = ("vae", "pca")
CLUSTERINGS = ("leiden", "hdbscan")


def _label_key(section: dict[str, Any]) -> str | None:
    return section.get("input", {}).get("label_key")


def clustering_metrics(embedding: ad.AnnData, section: dict[str, Any], per_bin: bool = False) -> dict[str, Any]:
    """ARI/NMI of every clustering vs the known labels and their silhouette, per embedding.

    The labels are ``obs[section["input"]["label_key"]]``.

    ``per_bin`` adds each cluster's precision/recall against its majority label (binning).
    Without known labels only cluster counts are reported.
    """
    label_key, seed = _label_key(section), section["training"]["seed"]
    report: dict[str, Any] = {"n_samples": int(embedding.n_obs), "n_features": int(embedding.n_vars)}
    labelled = bool(label_key) and label_key in embedding.obs
    if labelled:
        report["label_key"] = label_key
        report["n_labels"] = int(embedding.obs[label_key].nunique())
    if batch_key := section.get("input", {}).get("batch_key"):
        report["batch_key"] = batch_key  # the VAE's decoder was conditioned on it; PCA is not
    for name in EMBEDDINGS:
        scores: dict[str, Any] = {"dimensions": int(embedding.obsm[f"X_{name}"].shape[1])}
        for method in CLUSTERINGS:
            clusters = embedding.obs[f"{name}_{method}"]
            if labelled:
                scores[method] = agreement(embedding.obs[label_key], clusters)
                if per_bin:
                    scores[method]["bins"] = bin_purity(embedding.obs[label_key], clusters)
            else:
                scores[method] = {"n_clusters": int(clusters[clusters != "noise"].nunique())}
        selection = embedding.uns.get(f"{name}_leiden_resolution")
        if selection:
            scores["leiden"]["resolution"] = selection["selected"]
            scores["leiden"]["nmi_by_resolution"] = dict(selection["nmi_by_resolution"])
        if labelled:
            scores["silhouette"] = label_silhouette(embedding.obsm[f"X_{name}"], embedding.obs[label_key], seed)
        report[name] = scores
    report["warnings"] = degenerate_settings(embedding.n_vars, {
        "vae.baseline.n_components": (section.get("baseline", {}).get("n_components"), "the PCA baseline is the whole space"),
    }, unit="features")  # fmt: skip
    if labelled:
        report["vae_leiden_ari_at_least_pca"] = report["vae"]["leiden"]["ari"] >= report["pca"]["leiden"]["ari"]
        report["vae_hdbscan_ari_at_least_pca"] = report["vae"]["hdbscan"]["ari"] >= report["pca"]["hdbscan"]["ari"]
    return report


def binning_metrics(embedding: ad.AnnData, section: dict[str, Any]) -> dict[str, Any]:
    return clustering_metrics(embedding, section, per_bin=True)


def umap_figure(embedding: ad.AnnData, section: dict[str, Any], metrics: dict[str, Any]):
    """UMAPs of VAE and PCA (rows) coloured by the known labels, Leiden and HDBSCAN (columns)."""
    label_key = _label_key(section)
    columns = ([label_key] if label_key and label_key in embedding.obs else []) + [
        f"{{name}}_{method}" for method in CLUSTERINGS
    ]
    scores = {
        name: {f"{name}_{m}": metrics[name][m].get("ari") for m in CLUSTERINGS} for name in EMBEDDINGS
    }
    return plots.umap_panels(embedding, EMBEDDINGS, columns, scores)


def training_figure(training: dict[str, Any]):
    from omicsgen.plots.training import training_curves

    return training_curves({"VAE": training["history"]}, ["loss", "reconstruction", "kl"])
