"""Kedro pipelines: thin wiring of the functions in ``preprocessing``, ``models``,
``metrics`` and ``plots``."""
