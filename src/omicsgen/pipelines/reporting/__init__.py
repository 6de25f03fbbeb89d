"""Reporting: one sub-package per method (metrics JSON and figures), named like its
modelling sub-package and exposing ``create_pipeline()``."""
