import numpy as np
import pytest

from crackal.data.boxes import ImageBoxes
from crackal.metrics.detection import DetectionEvaluator, box_cover, pixel_counts, pixel_scores


def mask_with_two_cracks() -> np.ndarray:
    mask = np.zeros((10, 20), np.uint8)
    mask[2, 2:8] = 1  # 6 crack pixels
    mask[7, 12:16] = 1  # 4 crack pixels
    return mask


def test_paper_measures_by_hand():
    # one box around the first crack, one on empty road
    boxes = ImageBoxes([[1, 1, 9, 4], [15, 5, 20, 6]], [1, 1], [0.9, 0.8])
    counts = pixel_counts(boxes, mask_with_two_cracks())
    assert counts == {"boxes": 2, "correct_boxes": 1, "defect_pixels": 10, "missed_pixels": 4, "pixels": 200,
                      "covered_pixels": 24 + 5}
    scores = pixel_scores(counts)
    assert scores["box_precision"] == 0.5
    assert scores["segmentation_error"] == pytest.approx(0.4)
    assert scores["data_reduction"] == pytest.approx(1 - 29 / 200)


def test_overlapping_boxes_count_pixels_once_and_box_of_wrong_class_is_wrong():
    cover = box_cover(ImageBoxes([[0, 0, 4, 4], [2, 2, 6, 6]], [1, 1]), (10, 10))
    assert cover.sum() == 16 + 16 - 4
    counts = pixel_counts(ImageBoxes([[1, 1, 9, 4]], [2]), mask_with_two_cracks())
    assert counts["correct_boxes"] == 0


def test_evaluator_map_and_threshold():
    evaluator = DetectionEvaluator(["background", "crack"])
    truth = ImageBoxes([[1, 1, 9, 4], [11, 6, 17, 9]], [1, 1])
    prediction = ImageBoxes([[1, 1, 9, 4], [11, 6, 17, 9], [0, 5, 5, 10]], [1, 1, 1], [0.9, 0.3, 0.6])
    evaluator.update(prediction, truth, mask_with_two_cracks())
    result = evaluator.compute(score_threshold=0.5)
    # ranked: TP (0.9), FP (0.6), TP (0.3): AP@0.5 = 1 * 0.5 + 2/3 * 0.5 with COCO's interpolation
    assert result["map_50"] == pytest.approx(0.5 + 0.5 * 2 / 3, abs=0.02)
    assert result["box_precision"] == 0.5 and result["segmentation_error"] == pytest.approx(0.4)
    assert evaluator.compute(0.25)["segmentation_error"] == 0.0
    assert evaluator.best_threshold() <= 0.3  # finding the second crack is worth the false box
