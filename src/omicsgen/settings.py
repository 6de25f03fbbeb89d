"""Kedro project settings for omicsgen."""

from omicsgen.hooks import (
    DatasetRegistryHook,
    PreflightHook,
    RecordSourceFileHook,
    ReleaseMemoryHook,
    RunSummaryHook,
    ThreadsHook,
)
from omicsgen.tracking import MlflowTrackingHook

# pluggy calls the hooks of one event last-registered first: the preflight checks run
# before the MLflow run starts, so a run stopped by them leaves nothing behind.
HOOKS = (
    DatasetRegistryHook(), ThreadsHook(), MlflowTrackingHook(), PreflightHook(), RecordSourceFileHook(),
    ReleaseMemoryHook(), RunSummaryHook(),
)

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # "soft" merges nested keys, so conf/test only names what it shrinks instead of
    # repeating every parameter of a pipeline.
    "merge_strategy": {"parameters": "soft", "catalog": "soft"},
    # datasets.yml (the dataset registry, omicsgen.registry) is read with the parameters:
    # nodes get its entries as params:datasets.<name>.
    "config_patterns": {"parameters": ["parameters*", "parameters*/**", "**/parameters*", "datasets*"]},
}
