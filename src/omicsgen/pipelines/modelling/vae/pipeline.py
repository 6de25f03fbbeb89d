"""VAE modelling: embed cells (Kang PBMCs by default) and bin simulated reads by k-mers.

Both halves run the same template (train → transform → PCA baseline → cluster) on a
samples × features AnnData; they differ in where the features come from and in their
parameter section (``vae.cells`` / ``vae.binning``). Everything is namespaced ``vae``.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from omicsgen.pipelines.modelling.vae import nodes


def embedding_template(prefix: str, section: str) -> Pipeline:
    """``<prefix>features`` → model, training record, ``<prefix>embedding`` (latent, UMAP, clusters)."""
    return pipeline(
        [
            node(
                nodes.train,
                [f"{prefix}features", f"params:{section}", "params:seed", "params:device"],
                [f"{prefix}model", f"{prefix}training"],
                name=f"{prefix}train",
            ),
            node(
                nodes.transform,
                [f"{prefix}model", f"{prefix}features", "params:device"],
                f"{prefix}embedded",
                name=f"{prefix}transform",
            ),
            node(
                nodes.add_pca_baseline,
                [f"{prefix}embedded", f"params:{section}", "params:seed"],
                f"{prefix}with_baseline",
                name=f"{prefix}pca_baseline",
            ),
            node(
                nodes.cluster,
                [f"{prefix}with_baseline", f"params:{section}", "params:seed"],
                f"{prefix}embedding",
                name=f"{prefix}cluster",
            ),
        ]
    )


def cells_pipeline() -> Pipeline:
    choose = node(
        nodes.choose_cells, ["cells_input", "params:cells"], "features", name="choose_cells"
    )
    return pipeline(
        [choose, embedding_template("", "cells")],
        namespace="vae",
        inputs={"cells_input": "kang.model_input"},
    )


def binning_pipeline() -> Pipeline:
    featurise = node(
        nodes.featurise_sequences,
        ["binning_reads", "params:binning"],
        "binning_features",
        name="binning_kmer_composition",
    )
    return pipeline([featurise, embedding_template("binning_", "binning")], namespace="vae")


def create_pipeline(**kwargs) -> Pipeline:
    return cells_pipeline() + binning_pipeline()
