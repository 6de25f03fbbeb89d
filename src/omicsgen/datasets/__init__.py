"""Kedro datasets the ecosystem lacks."""

from omicsgen.datasets.anndata_dataset import AnnDataDataset
from omicsgen.datasets.torch_checkpoint_dataset import TorchCheckpointDataset

__all__ = ["AnnDataDataset", "TorchCheckpointDataset"]
