"""``vae``: VAE embedding and clustering of cells, and composition-based binning of reads
(datasets of kind ``sequences``). ``kedro run --pipelines vae`` runs both;
``kedro run --pipelines vae_apply`` embeds a dataset with a saved model."""

from omicsgen.pipelines.modelling.vae.nodes import bind_dataset, check_inputs
from omicsgen.pipelines.modelling.vae.pipeline import create_apply_pipeline, create_pipeline

__all__ = ["bind_dataset", "check_inputs", "create_apply_pipeline", "create_pipeline"]
