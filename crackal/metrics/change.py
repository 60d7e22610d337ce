"""Change-detection scores: pixel ROC-AUC and F1 of change maps against change masks."""

from __future__ import annotations

import numpy as np

from crackal.metrics.segmentation import AUC_BINS, roc_auc_from_histograms

PROTOCOL = (
    "pixel ROC-AUC of the change probability over every pixel of the test tiles (a balanced set: as many changed "
    "as unchanged tiles), from 1000 probability bins; F1 / precision / recall of changed pixels at probability 0.5"
)


def change_scores(probs: np.ndarray, masks: np.ndarray) -> dict[str, float]:
    """``probs`` and ``masks`` ``(N, H, W)``: change probability and 0/1 truth, pixels pooled.

    >>> change_scores(np.array([[[0.9, 0.2]]]), np.array([[[1, 0]]]))["auc"]
    1.0
    """
    truth = masks.reshape(-1) > 0
    bins = np.clip((probs.reshape(-1) * AUC_BINS).astype(np.int64), 0, AUC_BINS - 1)
    auc = roc_auc_from_histograms(np.bincount(bins[truth], minlength=AUC_BINS), np.bincount(bins[~truth], minlength=AUC_BINS))
    predicted = probs.reshape(-1) >= 0.5
    tp = float((predicted & truth).sum())
    precision = tp / max(1.0, float(predicted.sum()))
    recall = tp / max(1.0, float(truth.sum()))
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"auc": round(auc, 4), "f1": round(f1, 4), "precision": round(precision, 4), "recall": round(recall, 4)}
