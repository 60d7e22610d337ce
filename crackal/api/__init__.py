"""The Python API: one function per command-line job, with the same options.

``crackal synth / train / evaluate / predict / pretrain`` -> ``synth``, ``train``, ``evaluate``, ``predict``, ``pretrain``;
``crackal detect train`` -> ``detect_train``; ``crackal al step`` -> ``al_step``;
``crackal classify train`` -> ``classify_train``; ``crackal change al`` -> ``change_simulate``;
``crackal serve`` -> ``serve`` (``--add-user`` -> ``add_user``, ``--list-sessions`` -> ``list_sessions``,
``--revoke-sessions`` -> ``revoke_sessions``); ``crackal al backup / restore`` -> ``al_backup``, ``al_restore``.
"""

from __future__ import annotations

import importlib

_WHERE = {
    **dict.fromkeys(("al_config", "al_export", "al_export_queue", "al_import", "al_init", "al_report", "al_run", "al_status", "al_step",
                     "simulate"), ("crackal.api.active", None)),
    **dict.fromkeys(("detect_evaluate", "detect_predict", "detect_train"), ("crackal.api.detection", None)),
    **dict.fromkeys(("evaluate", "export", "predict", "pretrain", "synth", "train"), ("crackal.api.segmentation", None)),
    **dict.fromkeys(("add_user", "list_sessions", "revoke_sessions", "serve"), ("crackal.api.webapp", None)),
    **dict.fromkeys(("al_backup", "al_restore"), ("crackal.api.backup", None)),
    "change_tiles": ("crackal.change.api", "pool_and_test"),
    "change_simulate": ("crackal.change.api", "simulate"),
    "change_synth": ("crackal.change.api", "synth_pairs"),
    "classify_evaluate": ("crackal.classify.workflow", "evaluate_classifier"),
    "classify_predict": ("crackal.classify.workflow", "predict_sliding"),
    "classify_train": ("crackal.classify.workflow", "train_classifier"),
}


def __getattr__(name: str):
    """Each function is imported on first use (the project commands do without torch)."""
    if name not in _WHERE:
        raise AttributeError(f"module 'crackal.api' has no attribute {name!r}")
    module, attribute = _WHERE[name]
    return getattr(importlib.import_module(module), attribute or name)


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "add_user",
    "al_backup",
    "al_config",
    "al_export",
    "al_export_queue",
    "al_import",
    "al_init",
    "al_report",
    "al_restore",
    "al_run",
    "al_status",
    "al_step",
    "change_simulate",
    "change_synth",
    "change_tiles",
    "classify_evaluate",
    "classify_predict",
    "classify_train",
    "detect_evaluate",
    "detect_predict",
    "detect_train",
    "evaluate",
    "export",
    "list_sessions",
    "predict",
    "pretrain",
    "revoke_sessions",
    "serve",
    "simulate",
    "synth",
    "train",
]
