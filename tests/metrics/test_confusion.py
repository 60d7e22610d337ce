"""The arg-max view of multi-class scores, on a hand-made example with a known answer."""

import numpy as np
import pytest

from crackal.metrics.confusion import confusion_matrix, confusion_scores
from crackal.metrics.segmentation import SegmentationEvaluator, summary_rows
from crackal.training.plots import plot_confusion

NAMES = ["background", "crack", "pothole", "patch"]


def example():
    """10x10: crack row 0 (10 px), pothole rows 5-6 (20 px), no patch; one ignored pixel."""
    mask = np.zeros((10, 10), np.uint8)
    mask[0, :] = 1
    mask[5:7, :] = 2
    mask[9, 9] = 255
    predicted = np.zeros((10, 10), np.int64)
    predicted[0, :6] = 1  # crack: 6 hits, 4 missed (as background)
    predicted[1, :4] = 1  # 4 false alarms on background
    predicted[5, :] = 2  # pothole: 10 hits
    predicted[6, :5] = 3  # 5 pothole pixels called patch, 5 left as background
    predicted[9, 9] = 3  # ignored
    return mask, predicted


def test_confusion_matrix_and_scores_by_hand():
    mask, predicted = example()
    matrix = confusion_matrix(mask, predicted, 4, valid=mask != 255)
    assert matrix.tolist() == [[65, 4, 0, 0], [4, 6, 0, 0], [5, 0, 10, 5], [0, 0, 0, 0]]
    scores = confusion_scores(matrix, NAMES)
    crack, pothole, patch = (scores["classes"][n] for n in NAMES[1:])
    assert crack["iou"] == pytest.approx(6 / 14, abs=1e-4) and crack["area_error"] == 0.0
    assert pothole["iou"] == 0.5 and pothole["area_error"] == -0.5 and pothole["recall"] == 0.5
    assert patch["iou"] == 0.0 and patch["area_error"] is None  # predicted but never true: IoU 0, area error undefined
    # mean over the three defect classes (patch counts: it was predicted), background (IoU 65/78) left out
    assert scores["miou_defects"] == pytest.approx((6 / 14 + 0.5 + 0.0) / 3, abs=1e-4)


def test_evaluator_reports_the_argmax_view_and_rows():
    mask, predicted = example()
    probs = np.full((4, 10, 10), 0.05, np.float32)
    np.put_along_axis(probs, predicted[None], 0.85, axis=0)
    ev = SegmentationEvaluator(NAMES, tolerances=(0,))
    ev.update(probs, mask)
    ev.update(probs, mask)  # counts pooled: same shares
    result = ev.compute()
    assert result["argmax"]["matrix"][2] == [10, 0, 20, 10]
    assert result["mean"]["argmax_miou_defects"] == result["argmax"]["miou_defects"] == pytest.approx(0.3095, abs=1e-4)
    rows = {(name, label): value for name, label, value in summary_rows(result)}
    assert rows[("defects", "mIoU over defect classes, arg-max (background left out)")] == pytest.approx(0.3095, abs=1e-4)
    assert rows[("pothole", "area error of the arg-max class, (predicted - true) / true")] == -0.5


def test_confusion_figure_is_written(tmp_path):
    mask, predicted = example()
    plot_confusion(confusion_matrix(mask, predicted, 4), NAMES, tmp_path / "confusion.png")
    assert (tmp_path / "confusion.png").stat().st_size > 1000
