"""Modelling: one sub-package per method (``scgen``, ``normae``, ``aif``, ``cscgan``, ``vae``).

Each sub-package exposes ``create_pipeline()`` (its nodes, namespaced by the method name)
and ``DATASETS`` (the data-engineering namespaces it reads); it may also expose
``create_extra_pipelines()`` returning further named pipelines (e.g. a grid search).
The pipeline registry finds them, so adding a method touches no shared file.
"""
