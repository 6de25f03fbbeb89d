"""VAE modelling: embed cells, or bin reads by k-mer composition (sequence datasets).

Both run the same template (train → transform → PCA baseline → cluster) on a
samples × features AnnData; they differ in where the features come from and in their
parameter section (``vae.cells`` / ``vae.binning``).
"""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from omicsgen.pipelines.modelling.vae import nodes


def embedding_template() -> Pipeline:
    """``features`` → model, training record, ``embedding`` (latent, UMAP, clusters)."""
    return pipeline(
        [
            node(nodes.train, ["features", "settings"], ["model", "training"], name="train"),
            node(nodes.transform, ["model", "features", "settings"], "embedded", name="transform"),
            node(nodes.add_pca_baseline, ["embedded", "settings"], "with_baseline", name="pca_baseline"),
            node(nodes.cluster, ["with_baseline", "settings"], "embedding", name="cluster"),
        ]
    )


def create_pipeline(kind: str = "perturbation") -> Pipeline:
    if kind == "sequences":
        first = node(nodes.featurise_sequences, ["raw", "settings"], "features", name="kmer_composition")
    else:
        first = node(nodes.choose_cells, ["model_input", "settings"], "features", name="check_cells")
    return pipeline([first, embedding_template()])
