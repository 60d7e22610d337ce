"""Detection scores: COCO mAP (torchmetrics) and the RetinaNet crack paper's pixel measures.

The paper's three measures compare predicted boxes with pixel masks:

* box precision: share of predicted boxes that hold at least one pixel of their class;
* segmentation error: share of ground-truth defect pixels outside every predicted box
  (what a detect-then-segment pipeline can never recover);
* data reduction: share of image pixels outside every predicted box (what the second
  stage does not have to segment); ``box_coverage`` = 1 - data reduction.

Pixel counts are pooled over all images. Predictions count when their score reaches the
operating threshold (``score_threshold``; chosen on the validation split during training).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from crackal.data.boxes import ImageBoxes
from crackal.data.io import IGNORE_INDEX

MAP_PROTOCOL = "COCO mAP (pycocotools via torchmetrics): all scored boxes, IoU 0.5 (map_50) and mean over 0.5:0.95 (map)"
PIXEL_PROTOCOL = "boxes with score >= score_threshold against pixel masks, pixel counts pooled over images"


def box_cover(boxes: ImageBoxes, shape: tuple[int, int]) -> np.ndarray:
    """Boolean map of the pixels inside at least one box (coordinates rounded outwards)."""
    cover = np.zeros(shape, bool)
    for x0, y0, x1, y1 in boxes.boxes:
        cover[max(0, int(np.floor(y0))):int(np.ceil(y1)), max(0, int(np.floor(x0))):int(np.ceil(x1))] = True
    return cover


def pixel_counts(boxes: ImageBoxes, mask: np.ndarray) -> dict[str, int]:
    """The counts behind the paper's measures for one image (see ``pixel_scores``)."""
    valid = mask != IGNORE_INDEX
    defect = (mask > 0) & valid
    cover = box_cover(boxes, mask.shape)
    correct = 0
    for (x0, y0, x1, y1), label in zip(boxes.boxes, boxes.labels):
        crop = mask[max(0, int(np.floor(y0))):int(np.ceil(y1)), max(0, int(np.floor(x0))):int(np.ceil(x1))]
        correct += bool((crop == label).any())
    return {"boxes": len(boxes), "correct_boxes": correct, "defect_pixels": int(defect.sum()),
            "missed_pixels": int((defect & ~cover).sum()), "pixels": int(mask.size), "covered_pixels": int(cover.sum())}


def pixel_scores(counts: dict[str, int]) -> dict[str, float]:
    """Box precision, segmentation error, data reduction and box coverage from pooled counts."""
    coverage = counts["covered_pixels"] / max(1, counts["pixels"])
    return {
        "box_precision": counts["correct_boxes"] / counts["boxes"] if counts["boxes"] else 1.0,
        "segmentation_error": counts["missed_pixels"] / counts["defect_pixels"] if counts["defect_pixels"] else 0.0,
        "data_reduction": 1.0 - coverage,
        "box_coverage": coverage,
    }


def _as_dict(boxes: ImageBoxes) -> dict[str, torch.Tensor]:
    out = {"boxes": torch.from_numpy(boxes.boxes), "labels": torch.from_numpy(boxes.labels)}
    if boxes.scores is not None:
        out["scores"] = torch.from_numpy(boxes.scores)
    return out


class DetectionEvaluator:
    """Accumulates predictions, ground-truth boxes and (optional) masks, image by image.

    ``compute(score_threshold)`` gives mAP (every scored box, as COCO does), per-class AP at
    IoU 0.5 and, for images with masks, the paper's pixel measures at that threshold.
    ``best_threshold()`` picks the threshold that maximises the harmonic mean of box
    precision and pixel recall (1 - segmentation error) over the accumulated images.
    """

    THRESHOLDS = tuple(np.round(np.arange(0.05, 0.96, 0.05), 2))

    def __init__(self, class_names: Sequence[str]) -> None:
        from torchmetrics.detection import MeanAveragePrecision

        self.class_names = list(class_names)
        self.map = MeanAveragePrecision(iou_type="bbox", class_metrics=True, backend="pycocotools")
        self.map_50 = MeanAveragePrecision(iou_type="bbox", iou_thresholds=[0.5], class_metrics=True, backend="pycocotools")
        self.images = 0
        self._masked: list[tuple[ImageBoxes, np.ndarray]] = []

    def update(self, prediction: ImageBoxes, truth: ImageBoxes, mask: np.ndarray | None = None) -> None:
        """Add one image: predicted and true boxes and, for the pixel measures, its class mask."""
        for metric in (self.map, self.map_50):
            metric.update([_as_dict(prediction)], [_as_dict(truth)])
        self.images += 1
        if mask is not None:
            self._masked.append((prediction, mask))

    def pixel_measures(self, score_threshold: float) -> dict[str, float] | None:
        """The pixel measures over the images with masks at ``score_threshold``; None without masks."""
        if not self._masked:
            return None
        total: dict[str, int] = {}
        for prediction, mask in self._masked:
            for key, value in pixel_counts(prediction.above(score_threshold), mask).items():
                total[key] = total.get(key, 0) + value
        return pixel_scores(total)

    def best_threshold(self) -> float:
        """The score threshold of ``THRESHOLDS`` that maximises the harmonic mean of box precision and
        pixel recall; 0.5 without masks."""
        def balance(threshold: float) -> float:
            s = self.pixel_measures(threshold)
            assert s is not None  # only called with masked images
            recall = 1 - s["segmentation_error"]
            return 2 * s["box_precision"] * recall / max(1e-9, s["box_precision"] + recall)

        return float(max(self.THRESHOLDS, key=balance)) if self._masked else 0.5

    def compute(self, score_threshold: float = 0.5) -> dict:
        """mAP, mAP@0.5, AP per class and, for images with masks, the pixel measures at ``score_threshold``."""
        scores, scores_50 = self.map.compute(), self.map_50.compute()
        per_class = {}
        ap, ap_50 = scores["map_per_class"].reshape(-1).tolist(), scores_50["map_per_class"].reshape(-1).tolist()
        for i, cls in enumerate(scores["classes"].reshape(-1).tolist()):
            if 0 < cls < len(self.class_names):  # -1: the class has no box in the ground truth
                per_class[self.class_names[cls]] = {"ap": ap[i], "ap_50": ap_50[i]}
        result = {
            "images": self.images,
            "map_protocol": MAP_PROTOCOL,
            "map": float(scores["map"]),
            "map_50": float(scores["map_50"]),
            "classes": per_class,
            "score_threshold": score_threshold,
        }
        pixels = self.pixel_measures(score_threshold)
        if pixels is not None:
            result.update(pixel_protocol=PIXEL_PROTOCOL, pixel_images=len(self._masked), **pixels)
        return result
