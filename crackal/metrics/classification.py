"""Patch-classification scores: accuracy, precision, recall, F1 and ROC-AUC."""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

PROTOCOL = (
    "accuracy of the arg-max class; precision / recall / F1 of the defect class (binary) or their mean over "
    "defect classes one-vs-rest (multi-class) at the arg-max; ROC-AUC exact (rank statistic, ties averaged) "
    "of the defect-class probability"
)


def roc_auc(truth: np.ndarray, score: np.ndarray) -> float:
    """Exact ROC-AUC (Mann-Whitney U); NaN when one class is absent.

    >>> roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    0.75
    """
    truth = np.asarray(truth).astype(bool)
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    if not n_pos or not n_neg:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[truth].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _binary(truth: np.ndarray, predicted: np.ndarray) -> tuple[float, float, float]:
    tp = float((truth & predicted).sum())
    precision = tp / max(1.0, float(predicted.sum()))
    recall = tp / max(1.0, float(truth.sum()))
    return precision, recall, (2 * precision * recall / (precision + recall) if precision + recall else 0.0)


def classification_scores(labels: np.ndarray, probs: np.ndarray, class_names: list[str] | None = None) -> dict:
    """Scores of ``probs (N, K)`` against integer ``labels (N,)``; class 0 is "no defect"."""
    labels, probs = np.asarray(labels), np.asarray(probs, dtype=np.float64)
    predicted = probs.argmax(1)
    per_class = {}
    for c in range(1, probs.shape[1]):
        p, r, f = _binary(labels == c, predicted == c)
        name = class_names[c] if class_names else str(c)
        per_class[name] = {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4),
                           "auc": round(roc_auc(labels == c, probs[:, c]), 4), "count": int((labels == c).sum())}
    mean = {k: round(float(np.mean([e[k] for e in per_class.values()])), 4) for k in ("precision", "recall", "f1", "auc")}
    confusion = np.zeros((probs.shape[1], probs.shape[1]), np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    return {"protocol": PROTOCOL, "patches": int(len(labels)), "accuracy": round(float((predicted == labels).mean()), 4),
            **mean, "classes": per_class, "confusion": confusion.tolist()}
