"""Pixel metrics for crack segmentation: precision / recall / F1 / IoU, strict and with a
distance tolerance, over all thresholds at once (ODS, OIS), and pixel ROC-AUC.

Every threshold is evaluated from one histogram per image, so sweeping 99 thresholds costs
about as much as one. With a tolerance of ``k`` pixels a predicted pixel is correct when a
ground-truth pixel lies within ``k`` px (Euclidean), and a ground-truth pixel is found when a
predicted pixel lies within ``k`` px; ``k = 0`` is strict pixel matching. This is the
dilation-based protocol of the crack literature (not one-to-one matching as in BSDS).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from skimage.morphology import disk

from crackal.data.io import IGNORE_INDEX
from crackal.metrics.confusion import PROTOCOL as ARGMAX_PROTOCOL
from crackal.metrics.confusion import confusion_matrix, confusion_scores

DEFAULT_THRESHOLDS = np.round(np.linspace(0.01, 0.99, 99), 2)
AUC_BINS = 1000

PROTOCOL = {
    "thresholds": "99 thresholds 0.01..0.99 on each class probability (one-vs-rest)",
    "ods": "ODS: one threshold for the whole set, chosen on it; pixel counts pooled over images",
    "ois": "OIS: best threshold per image; counts at those thresholds pooled over images",
    "fixed": "a fixed threshold given in advance (e.g. chosen on the validation split)",
    "tolerance": (
        "tolK: a predicted pixel is correct if ground truth lies within K px (Euclidean) and a "
        "ground-truth pixel is found if a prediction lies within K px; tol0 is strict"
    ),
    "iou": "IoU: strict (tol0) pixel intersection over union, counts pooled",
    "auc": "AUC: pixel ROC-AUC, strict, from 1000 probability bins",
    "argmax": ARGMAX_PROTOCOL,
}


def count_at_or_above(values: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """For each threshold ``t``, how many ``values`` are ``>= t`` (``thresholds`` ascending).

    >>> count_at_or_above(np.array([0.1, 0.5, 0.9]), np.array([0.2, 0.5, 0.95])).tolist()
    [2, 2, 0]
    """
    above = np.searchsorted(thresholds, values.ravel(), side="right")
    hist = np.bincount(above, minlength=len(thresholds) + 1)
    return np.cumsum(hist[::-1])[::-1][1:]


def threshold_counts(
    prob: np.ndarray,
    truth: np.ndarray,
    tolerance: int = 0,
    thresholds: np.ndarray = DEFAULT_THRESHOLDS,
    valid: np.ndarray | None = None,
) -> np.ndarray:
    """Counts ``(4, T)`` for one image and one class at every threshold.

    Rows: predicted pixels, predicted pixels that are correct, ground-truth pixels,
    ground-truth pixels that are found (see the module docstring for the tolerance rule).
    """
    truth = truth.astype(bool)
    if valid is None:
        valid = np.ones_like(truth)
    prob = np.where(valid, prob, 0.0)
    gt = truth & valid
    if tolerance > 0:
        footprint = disk(tolerance).astype(bool)
        near_truth = ndimage.binary_dilation(gt, structure=footprint)
        best_nearby = ndimage.maximum_filter(prob, footprint=footprint, mode="constant", cval=0.0)
    else:
        near_truth, best_nearby = gt, prob
    n_true = np.full(len(thresholds), gt.sum())
    return np.stack(
        [
            count_at_or_above(prob[valid], thresholds),
            count_at_or_above(prob[near_truth & valid], thresholds),
            n_true,
            count_at_or_above(best_nearby[gt], thresholds),
        ]
    ).astype(np.int64)


def scores_from_counts(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 (and strict IoU) from ``(4, ...)`` counts; 0/0 is 0 (1 for empty-vs-empty)."""
    pred, pred_hit, true, true_hit = counts.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(pred > 0, pred_hit / pred, np.where(true > 0, 0.0, 1.0))
        recall = np.where(true > 0, true_hit / true, np.where(pred > 0, 0.0, 1.0))
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        union = pred + true - pred_hit
        iou = np.where(union > 0, pred_hit / union, 1.0)
    return {"precision": precision, "recall": recall, "f1": f1, "iou": iou}


def _pick(scores: dict[str, np.ndarray], index: int, threshold: float, with_iou: bool) -> dict[str, float]:
    out = {"threshold": float(threshold)}
    for key in ("precision", "recall", "f1") + (("iou",) if with_iou else ()):
        out[key] = round(float(scores[key][index]), 4)
    return out


def roc_auc_from_histograms(positive: np.ndarray, negative: np.ndarray) -> float:
    """ROC-AUC from per-bin counts of positive and negative pixels (trapezoid rule)."""
    if positive.sum() == 0 or negative.sum() == 0:
        return float("nan")
    tpr = np.concatenate([[0.0], np.cumsum(positive[::-1]) / positive.sum()])
    fpr = np.concatenate([[0.0], np.cumsum(negative[::-1]) / negative.sum()])
    return float(np.trapezoid(tpr, fpr))


class SegmentationEvaluator:
    """Accumulates images one at a time; ``compute()`` gives every metric with its protocol.

    >>> ev = SegmentationEvaluator(["background", "crack"], tolerances=(0, 2))
    >>> truth = np.zeros((8, 8), np.uint8); truth[4, :] = 1
    >>> prob = np.zeros((2, 8, 8), np.float32); prob[1, 4, :] = 0.9; prob[0] = 1 - prob[1]
    >>> ev.update(prob, truth)
    >>> ev.compute()["classes"]["crack"]["tol0"]["ods"]["f1"]
    1.0
    """

    def __init__(
        self,
        class_names: Sequence[str],
        tolerances: Sequence[int] = (0, 2, 5),
        thresholds: np.ndarray = DEFAULT_THRESHOLDS,
        fixed_threshold: float | None = None,
    ) -> None:
        self.class_names = list(class_names)
        self.tolerances = sorted({int(t) for t in tolerances} | {0})
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        self.fixed_threshold = fixed_threshold
        n_defect = len(self.class_names) - 1
        self.totals = np.zeros((n_defect, len(self.tolerances), 4, len(self.thresholds)), np.int64)
        self.per_image: list[np.ndarray] = []
        self.auc_hist = np.zeros((n_defect, 2, AUC_BINS), np.int64)
        self.confusion = np.zeros((len(self.class_names),) * 2, np.int64)

    def update(self, probs: np.ndarray, mask: np.ndarray) -> None:
        """Add one image: ``probs (C, H, W)`` class probabilities, ``mask (H, W)`` class indices."""
        valid = mask != IGNORE_INDEX
        image_counts = np.zeros(self.totals.shape, np.int64)
        for c in range(1, len(self.class_names)):
            truth = mask == c
            for t, tol in enumerate(self.tolerances):
                image_counts[c - 1, t] = threshold_counts(probs[c], truth, tol, self.thresholds, valid)
            bins = np.minimum((probs[c][valid] * AUC_BINS).astype(np.int64), AUC_BINS - 1)
            self.auc_hist[c - 1, 0] += np.bincount(bins[truth[valid]], minlength=AUC_BINS)
            self.auc_hist[c - 1, 1] += np.bincount(bins[~truth[valid]], minlength=AUC_BINS)
        self.totals += image_counts
        self.per_image.append(image_counts)
        self.confusion += confusion_matrix(mask, probs.argmax(0), len(self.class_names), valid)

    def compute(self) -> dict:
        """``{"protocol", "images", "classes": {name: {"tolK": {"ods", "ois", "fixed"?}, "auc"}}, "mean",
        "argmax"}``; ``argmax`` is the confusion matrix of the arg-max class with per-class IoU and
        area error and ``miou_defects`` (see ``crackal.metrics.confusion``), also in ``mean``."""
        classes = {}
        fixed_index = None
        if self.fixed_threshold is not None:
            fixed_index = int(np.abs(self.thresholds - self.fixed_threshold).argmin())
        per_image = np.stack(self.per_image) if self.per_image else np.zeros((0,) + self.totals.shape, np.int64)
        for c, name in enumerate(self.class_names[1:]):
            entry: dict = {"pixels": int(self.totals[c, 0, 2, 0])}
            for t, tol in enumerate(self.tolerances):
                strict = tol == 0
                scores = scores_from_counts(self.totals[c, t])
                best = int(scores["f1"].argmax())
                block = {"ods": _pick(scores, best, self.thresholds[best], strict)}
                if len(per_image):
                    image_f1 = scores_from_counts(np.moveaxis(per_image[:, c, t], 1, 0))["f1"]  # (images, T)
                    choice = image_f1.argmax(axis=1)
                    chosen = per_image[np.arange(len(per_image)), c, t, :, choice].sum(axis=0)
                    ois = scores_from_counts(chosen[:, None])
                    block["ois"] = _pick(ois, 0, float("nan"), strict)
                    del block["ois"]["threshold"]
                if fixed_index is not None:
                    block["fixed"] = _pick(scores, fixed_index, self.thresholds[fixed_index], strict)
                entry[f"tol{tol}"] = block
            entry["auc"] = round(roc_auc_from_histograms(*self.auc_hist[c]), 4)
            classes[name] = entry
        mean = {
            f"tol{tol}_ods_f1": round(float(np.mean([classes[n][f"tol{tol}"]["ods"]["f1"] for n in classes])), 4)
            for tol in self.tolerances
        }
        argmax = confusion_scores(self.confusion, self.class_names)
        mean["argmax_miou_defects"] = argmax["miou_defects"]
        return {"protocol": PROTOCOL, "images": len(self.per_image), "classes": classes, "mean": mean, "argmax": argmax}


def summary_rows(result: dict) -> list[tuple[str, str, float]]:
    """``(class, metric named with its protocol, value)`` rows for printing."""
    rows = []
    for name, entry in result["classes"].items():
        for key, block in entry.items():
            if not key.startswith("tol"):
                continue
            tol = int(key[3:])
            label = "strict" if tol == 0 else f"tolerance {tol}px"
            ods = block["ods"]
            rows.append((name, f"ODS-F1 {label} (P {ods['precision']:.3f} R {ods['recall']:.3f} @ {ods['threshold']:.2f})", ods["f1"]))
            if "ois" in block:
                rows.append((name, f"OIS-F1 {label}", block["ois"]["f1"]))
            if "fixed" in block:
                fixed = block["fixed"]
                rows.append((name, f"F1 {label} at fixed threshold {fixed['threshold']:.2f}", fixed["f1"]))
            if tol == 0:
                rows.append((name, "IoU strict at ODS threshold", ods["iou"]))
        rows.append((name, "pixel ROC-AUC (strict)", entry["auc"]))
        argmax = result.get("argmax", {}).get("classes", {}).get(name, {})
        for key, label in (("iou", "IoU of the arg-max class (strict)"),
                           ("area_error", "area error of the arg-max class, (predicted - true) / true")):
            if argmax.get(key) is not None:
                rows.append((name, label, argmax[key]))
    if result.get("argmax", {}).get("miou_defects") is not None:
        rows.append(("defects", "mIoU over defect classes, arg-max (background left out)", result["argmax"]["miou_defects"]))
    return rows


def cohen_kappa(first: np.ndarray, second: np.ndarray, num_classes: int = 2) -> float:
    """Cohen's kappa between two class masks (pixels as the items, ``IGNORE_INDEX`` in either
    left out): 1 for identical masks, about 0 for chance agreement, below 0 for less; 1 when
    both hold only one and the same class.

    >>> cohen_kappa(np.array([[0, 1], [1, 0]]), np.array([[0, 1], [1, 0]]))
    1.0
    >>> cohen_kappa(np.array([[0, 1], [1, 0]]), np.array([[1, 0], [0, 1]]))
    -1.0
    """
    a, b = np.asarray(first).ravel(), np.asarray(second).ravel()
    keep = (a != IGNORE_INDEX) & (b != IGNORE_INDEX)
    a, b = a[keep].astype(np.int64), b[keep].astype(np.int64)
    if a.size == 0:
        return 1.0
    table = np.bincount(a * num_classes + b, minlength=num_classes**2).reshape(num_classes, num_classes) / a.size
    observed, chance = float(np.trace(table)), float(table.sum(1) @ table.sum(0))
    return 1.0 if chance >= 1.0 else (observed - chance) / (1.0 - chance)
