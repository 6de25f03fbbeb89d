"""``vae``: VAE embedding and clustering of cells, and composition-based binning of reads.

``kedro run --pipelines vae`` runs both; ``kedro run --pipelines vae_binning`` only the
binning of sequences (FASTA → k-mers → VAE → bins → scores).
"""

from kedro.pipeline import Pipeline

from omicsgen.pipelines.modelling.vae.pipeline import binning_pipeline, create_pipeline

#: data-engineering namespaces the cell embedding reads (kang.model_input)
DATASETS = ("kang",)


def create_extra_pipelines() -> dict[str, Pipeline]:
    from omicsgen.pipelines.reporting.vae.pipeline import binning_reporting

    return {"vae_binning": binning_pipeline() + binning_reporting()}


__all__ = ["DATASETS", "create_extra_pipelines", "create_pipeline"]
