"""scGen perturbation prediction on Kang PBMCs (``kedro run --pipelines scgen``)."""

from omicsgen.pipelines.modelling.scgen.pipeline import create_pipeline

#: data-engineering namespaces this method reads
DATASETS = ("kang",)

__all__ = ["DATASETS", "create_pipeline"]
