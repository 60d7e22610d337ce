"""The Python API: one function per command-line job, with the same options.

``crackal synth / train / evaluate / predict`` -> ``synth``, ``train``, ``evaluate``, ``predict``;
``crackal detect train`` -> ``detect_train``; ``crackal al step`` -> ``al_step``;
``crackal classify train`` -> ``classify_train``; ``crackal change al`` -> ``change_simulate``.
"""

from crackal.api.active import al_config, al_export_queue, al_import, al_init, al_report, al_run, al_status, al_step, simulate
from crackal.api.detection import detect_evaluate, detect_predict, detect_train
from crackal.api.segmentation import evaluate, predict, synth, train
from crackal.change.api import pool_and_test as change_tiles
from crackal.change.api import simulate as change_simulate
from crackal.change.api import synth_pairs as change_synth
from crackal.classify.workflow import evaluate_classifier as classify_evaluate
from crackal.classify.workflow import predict_sliding as classify_predict
from crackal.classify.workflow import train_classifier as classify_train

__all__ = [
    "al_config",
    "al_export_queue",
    "al_import",
    "al_init",
    "al_report",
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
    "predict",
    "simulate",
    "synth",
    "train",
]
