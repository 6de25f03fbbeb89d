"""omicsgen: deep generative models for omics data as Kedro pipelines."""

__version__ = "0.1.0"
