"""scGen perturbation prediction on every perturbation dataset (``kedro run --pipelines scgen``)."""

from omicsgen.pipelines.modelling.scgen.nodes import bind_dataset
from omicsgen.pipelines.modelling.scgen.pipeline import create_pipeline

__all__ = ["bind_dataset", "create_pipeline"]
