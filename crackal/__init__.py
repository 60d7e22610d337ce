"""crackal: crack and surface-defect segmentation trained with few labels.

The entry points a user imports; heavy modules load on first use, so ``import crackal``
stays fast::

    import crackal
    crackal.synth("data/synth", count=60)
    crackal.train("data/synth", "runs/synth", epochs=30)
    crackal.simulate("data/synth", "runs/al", ["bald", "random"], seeds=2)   # active learning
    crackal.al_init("project", "pool/", heldout_images="held/images", heldout_masks="held/masks")
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_API = (
    "synth", "train", "evaluate", "predict", "pretrain",
    "detect_train", "detect_evaluate", "detect_predict",
    "al_init", "al_step", "al_run", "al_config", "al_export", "al_export_queue", "al_import", "al_status", "al_report", "simulate",
    "al_backup", "al_restore",
    "classify_train", "classify_evaluate", "classify_predict",
    "change_synth", "change_tiles", "change_simulate",
    "serve", "add_user", "list_sessions", "revoke_sessions",
)
_LAZY = {
    **{name: "crackal.api" for name in _API},
    "run_demo": "crackal.demo",
    "ALConfig": "crackal.active.config",
    "TrainConfig": "crackal.runs.config",
    "DetectionConfig": "crackal.runs.config",
    "create_model": "crackal.models",
    "load_model": "crackal.runs.checkpoint",
    "CrackalError": "crackal.errors",
    "OptionError": "crackal.errors",
    "Progress": "crackal.progress",
}
__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'crackal' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
