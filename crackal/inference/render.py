"""Pictures of predictions: overlays of class masks on images and probability maps."""

from __future__ import annotations

import numpy as np

# background, crack, then other defect classes
PALETTE = np.array(
    [[0, 0, 0], [255, 40, 40], [255, 160, 0], [60, 140, 255], [60, 220, 90], [220, 60, 220], [0, 220, 220], [240, 240, 60]],
    dtype=np.float32,
)


def class_color(index: int) -> np.ndarray:
    """Colour of defect class ``index >= 1`` (colours repeat after 7 classes)."""
    return PALETTE[1 + (index - 1) % (len(PALETTE) - 1)]


def overlay(image: np.ndarray, class_mask: np.ndarray, alpha: float = 0.6, colors=None) -> np.ndarray:
    """The image with each defect class painted in its colour (``uint8`` RGB); ``colors``
    (one RGB triple per class, background first) replaces the default palette."""
    out = image.astype(np.float32).copy()
    for index in np.unique(class_mask):
        if index == 0 or index == 255:
            continue
        where = class_mask == index
        out[where] = (1 - alpha) * out[where] + alpha * (class_color(int(index)) if colors is None
                                                          else np.asarray(colors[index], np.float32))
    return out.clip(0, 255).astype(np.uint8)


def probability_png(probs: np.ndarray) -> np.ndarray:
    """Defect probability (1 - P(background)) as a ``uint8`` grey image."""
    return (255 * (1 - probs[0])).round().clip(0, 255).astype(np.uint8)


def class_mask_from_probs(probs: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Binary: crack where P(crack) >= threshold. Multi-class: the most probable class."""
    if probs.shape[0] == 2:
        return (probs[1] >= threshold).astype(np.uint8)
    return probs.argmax(axis=0).astype(np.uint8)


def draw_boxes(image: np.ndarray, boxes, colors=None, width: int = 2) -> np.ndarray:
    """The image with each box outlined in its class colour (``boxes``: ``ImageBoxes``)."""
    out = image.copy()
    height, img_width = out.shape[:2]
    for (x0, y0, x1, y1), label in zip(boxes.boxes.round().astype(int), boxes.labels):
        color = class_color(int(label)) if colors is None else np.asarray(colors[label], np.float32)
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(img_width, x1), min(height, y1)
        for top, bottom, left, right in ((y0, y0 + width, x0, x1), (y1 - width, y1, x0, x1),
                                         (y0, y1, x0, x0 + width), (y0, y1, x1 - width, x1)):
            out[max(0, top):max(0, bottom), max(0, left):max(0, right)] = color.astype(np.uint8)
    return out
