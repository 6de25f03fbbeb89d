"""Kedro datasets the ecosystem lacks."""

from omicsgen.datasets.anndata_dataset import AnnDataDataset
from omicsgen.datasets.declared_dataset import DeclaredDataset
from omicsgen.datasets.report_datasets import FigureDataset, OptionalCSVDataset, OptionalJSONDataset
from omicsgen.datasets.torch_checkpoint_dataset import TorchCheckpointDataset

__all__ = [
    "AnnDataDataset",
    "DeclaredDataset",
    "FigureDataset",
    "OptionalCSVDataset",
    "OptionalJSONDataset",
    "TorchCheckpointDataset",
]
