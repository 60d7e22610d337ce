"""The arg-max view of a multi-class segmentation: confusion matrix, per-class IoU, mIoU over
the defect classes (background left out) and per-class area error.

Each pixel gets the class of highest probability; counts are pooled over images (ignored
pixels left out). Rows are the true class, columns the predicted one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PROTOCOL = ("arg-max class per pixel, strict, counts pooled over images; mIoU over the defect classes present "
            "in the ground truth or the prediction (background left out); area error = (predicted - true) / true pixels")


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, num_classes: int, valid: np.ndarray | None = None) -> np.ndarray:
    """``(C, C)`` pixel counts, row = true class, column = predicted class.

    >>> confusion_matrix(np.array([0, 1, 1]), np.array([0, 1, 0]), 2).tolist()
    [[1, 0], [1, 1]]
    """
    truth, predicted = truth.ravel().astype(np.int64), predicted.ravel().astype(np.int64)
    if valid is not None:
        truth, predicted = truth[valid.ravel()], predicted[valid.ravel()]
    keep = (truth < num_classes) & (predicted < num_classes)
    counts = np.bincount(num_classes * truth[keep] + predicted[keep], minlength=num_classes**2)
    return counts.reshape(num_classes, num_classes)


def confusion_scores(matrix: np.ndarray, class_names: Sequence[str]) -> dict:
    """Per class IoU, precision, recall, true and predicted pixels and relative area error
    (None where undefined), and ``miou_defects``: the mean IoU over defect classes that occur.

    >>> scores = confusion_scores(np.array([[6, 0], [1, 1]]), ["background", "crack"])
    >>> scores["classes"]["crack"]["iou"], scores["classes"]["crack"]["area_error"], scores["miou_defects"]
    (0.5, -0.5, 0.5)
    """
    matrix = np.asarray(matrix, dtype=np.int64)
    classes: dict[str, dict[str, float | int | None]] = {}
    for c, name in enumerate(class_names):
        tp, true, predicted = int(matrix[c, c]), int(matrix[c].sum()), int(matrix[:, c].sum())
        union = true + predicted - tp
        classes[name] = {
            "iou": round(tp / union, 4) if union else None,
            "precision": round(tp / predicted, 4) if predicted else None,
            "recall": round(tp / true, 4) if true else None,
            "true_pixels": true,
            "predicted_pixels": predicted,
            "area_error": round((predicted - true) / true, 4) if true else None,
        }
    defect_ious = [iou for n in list(class_names)[1:] if (iou := classes[n]["iou"]) is not None]
    return {
        "protocol": PROTOCOL,
        "matrix": matrix.tolist(),
        "classes": classes,
        "miou_defects": round(float(np.mean(defect_ious)), 4) if defect_ious else None,
    }
