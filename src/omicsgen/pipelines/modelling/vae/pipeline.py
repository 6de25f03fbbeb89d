"""VAE modelling: embed cells, or bin reads by k-mer composition (sequence datasets).

Both run the same template (train → transform → PCA baseline → cluster) on a
samples × features AnnData; they differ in where the features come from and in their
parameter section (``vae.cells`` / ``vae.binning``). ``vae_apply`` embeds a dataset with
a saved model.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from omicsgen.pipelines.modelling.vae import nodes


def features_node(kind: str):
    """``features``: the k-mer composition of the reads (``raw``) for sequences, the checked
    cells (``model_input``) otherwise."""
    if kind == "sequences":
        return node(nodes.featurise_sequences, ["raw", "settings"], "features", name="kmer_composition")
    return node(nodes.choose_cells, ["model_input", "settings"], "features", name="check_cells")


def embedding_template() -> Pipeline:
    """``features`` → model, training record, ``embedding`` (latent, UMAP, clusters)."""
    return pipeline(
        [
            node(nodes.train, ["features", "settings"], ["model", "training"], name="train", tags="training"),
            node(nodes.embed, ["model", "features", "settings"], "embedded", name="transform"),
            node(nodes.add_pca_baseline, ["embedded", "settings"], "with_baseline", name="pca_baseline"),
            node(nodes.cluster, ["with_baseline", "settings"], "embedding", name="cluster"),
        ]
    )


def create_pipeline(kind: str = "perturbation") -> Pipeline:
    return pipeline([features_node(kind), embedding_template()])


def create_apply_pipeline(kind: str = "perturbation") -> Pipeline:
    """A saved model (``model``) embeds the dataset's features → ``applied`` (a copy of
    the features with the latent means in ``obsm["X_vae"]``; features matched by name)."""
    return pipeline(
        [features_node(kind), node(nodes.embed, ["model", "features", "settings"], "applied", name="embed")]
    )
