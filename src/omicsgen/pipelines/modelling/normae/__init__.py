"""NormAE (metabolomics batch-effect removal): ``kedro run --pipelines normae`` trains and
corrects; ``kedro run --pipelines normae_remove`` applies the saved model only."""

from omicsgen.pipelines.modelling.normae.nodes import bind_dataset, check_inputs
from omicsgen.pipelines.modelling.normae.pipeline import create_extra_pipelines, create_pipeline

__all__ = ["bind_dataset", "check_inputs", "create_extra_pipelines", "create_pipeline"]
