"""NormAE (metabolomics batch-effect removal): ``kedro run --pipelines normae`` trains and
corrects; ``kedro run --pipelines normae_apply`` corrects a dataset with a saved model
(``normae_remove``, the original command line's name for it, is the same pipeline)."""

from omicsgen.pipelines.modelling.normae.nodes import bind_dataset, check_inputs
from omicsgen.pipelines.modelling.normae.pipeline import create_apply_pipeline, create_pipeline

APPLY_ALIASES = ("normae_remove",)

__all__ = ["APPLY_ALIASES", "bind_dataset", "check_inputs", "create_apply_pipeline", "create_pipeline"]
