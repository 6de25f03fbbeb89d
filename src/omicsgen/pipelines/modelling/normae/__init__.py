"""NormAE (metabolomics batch-effect removal): ``kedro run --pipelines normae`` trains and
corrects; ``kedro run --pipelines normae_remove`` applies the saved model only."""

from kedro.pipeline import Pipeline

from omicsgen.pipelines.modelling.normae.pipeline import (
    DATASET,
    create_pipeline,
    create_remove_pipeline,
)

DATASETS = (DATASET,)


def create_extra_pipelines() -> dict[str, Pipeline]:
    from omicsgen.pipelines import data_engineering

    return {"normae_remove": data_engineering.create_dataset_pipeline(DATASET) + create_remove_pipeline()}


__all__ = ["DATASETS", "create_extra_pipelines", "create_pipeline"]
