"""Kedro project settings for omicsgen."""

from omicsgen.hooks import RecordSourceFileHook, RunSummaryHook

HOOKS = (RecordSourceFileHook(), RunSummaryHook())

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # "soft" merges nested keys, so conf/test only names what it shrinks instead of
    # repeating every parameter of a pipeline.
    "merge_strategy": {"parameters": "soft", "catalog": "soft"},
}
