"""The five methods' model classes, their networks and training plans, and the shared
training loop. Everything that imports torch lives in this package.

``from omicsgen.models import ScGen, NormAE, AIF, CscGAN, VAE`` — each derives from
:class:`omicsgen.models.base.BaseModel` (``setup_anndata``, ``train``, ``save``, ``load``).
The classes are imported on first use, so that importing a sub-module stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_CLASSES = {
    "ScGen": "omicsgen.models.scgen",
    "NormAE": "omicsgen.models.normae",
    "AIF": "omicsgen.models.aif",
    "CscGAN": "omicsgen.models.cscgan",
    "VAE": "omicsgen.models.vae",
    "BaseModel": "omicsgen.models.base",
}

__all__ = sorted(_CLASSES)


def __getattr__(name: str) -> Any:
    if name not in _CLASSES:
        raise AttributeError(f"module 'omicsgen.models' has no attribute {name!r}")
    return getattr(importlib.import_module(_CLASSES[name]), name)
