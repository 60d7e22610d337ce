"""crackal: crack and surface-defect segmentation trained with few labels.

The API is imported lazily so that ``import crackal`` stays fast::

    import crackal
    crackal.train("data/synth", "runs/synth", epochs=30)
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "synth": "crackal.api",
    "train": "crackal.api",
    "evaluate": "crackal.api",
    "predict": "crackal.api",
    "create_model": "crackal.models",
    "load_model": "crackal.training.checkpoint",
    "CrackalError": "crackal.errors",
}
__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'crackal' has no attribute {name!r}")
