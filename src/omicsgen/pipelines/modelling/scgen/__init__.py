"""scGen perturbation prediction on every perturbation dataset (``kedro run --pipelines scgen``)."""

from omicsgen.pipelines.modelling.scgen.nodes import bind_dataset
from omicsgen.pipelines.modelling.scgen.nodes import held_out_cell_types as check_inputs
from omicsgen.pipelines.modelling.scgen.pipeline import create_apply_pipeline, create_pipeline

__all__ = ["bind_dataset", "check_inputs", "create_apply_pipeline", "create_pipeline"]
