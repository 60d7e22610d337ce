"""Detect then segment: a detector finds the regions that hold defects, and the segmentation
model runs only inside them (each box grown by a margin for context). Pixels outside every
region are background. Overlapping regions are merged first, so no pixel is segmented twice.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from crackal.data.boxes import ImageBoxes
from crackal.models.detect import detect_image
from crackal.models.predict import DEFAULT_TILE, predict_image


def grow_boxes(boxes: np.ndarray, margin: int, height: int, width: int) -> np.ndarray:
    """Integer ``x0, y0, x1, y1`` boxes grown by ``margin`` px and clipped to the image."""
    if not len(boxes):
        return np.zeros((0, 4), np.int64)
    grown = np.stack([np.floor(boxes[:, 0]) - margin, np.floor(boxes[:, 1]) - margin,
                      np.ceil(boxes[:, 2]) + margin, np.ceil(boxes[:, 3]) + margin], 1)
    return np.clip(grown, 0, [width, height, width, height]).astype(np.int64)


def merge_overlapping(boxes: np.ndarray) -> np.ndarray:
    """Replace boxes that overlap by their common bounding box, until none overlap.

    >>> merge_overlapping(np.array([[0, 0, 10, 10], [5, 5, 20, 20], [30, 0, 40, 5]])).tolist()
    [[0, 0, 20, 20], [30, 0, 40, 5]]
    """
    regions = [list(b) for b in boxes]
    merged = True
    while merged:
        merged = False
        for i in range(len(regions)):
            for j in range(i + 1, len(regions)):
                a, b = regions[i], regions[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    regions[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    del regions[j]
                    merged = True
                    break
            if merged:
                break
    return np.array(regions, np.int64).reshape(-1, 4)


def segment_regions(segmenter: nn.Module, image: np.ndarray, regions: np.ndarray, num_channels: int,
                    tile_size: int = DEFAULT_TILE, tta: bool = False) -> np.ndarray:
    """Class probabilities ``(C, H, W)``: the segmenter's inside ``regions``, background elsewhere."""
    height, width = image.shape[:2]
    probs = np.zeros((num_channels, height, width), np.float32)
    probs[0] = 1.0
    for x0, y0, x1, y1 in regions:
        if x1 > x0 and y1 > y0:
            probs[:, y0:y1, x0:x1] = predict_image(segmenter, image[y0:y1, x0:x1], tile_size=tile_size, tta=tta)
    return probs


def predict_two_stage(
    segmenter: nn.Module,
    detector: nn.Module,
    image: np.ndarray,
    num_classes: int,
    score_threshold: float = 0.5,
    margin: int = 16,
    tile_size: int = DEFAULT_TILE,
    tta: bool = False,
) -> tuple[np.ndarray, ImageBoxes, np.ndarray]:
    """Probabilities ``(C, H, W)``, the detections kept and the merged regions segmented."""
    boxes = detect_image(detector, image).above(score_threshold)
    regions = merge_overlapping(grow_boxes(boxes.boxes, margin, *image.shape[:2]))
    return segment_regions(segmenter, image, regions, num_classes, tile_size, tta), boxes, regions
