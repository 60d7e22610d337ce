"""The context window of a crop, for the two-scale model (``--context 2`` or ``4``).

A crop of ``h x w`` pixels at ``(top, left)`` is paired with the window ``context`` times as
large with the same centre, shrunk (area average) back to ``h x w``: the same pixel count
covering ``context``^2 times the ground. Beyond the image border the image is mirrored
(``reflect``, edge pixel not repeated), as the model's own fallback does for an input
without its context (``crackal.models.context.self_context``).
"""

from __future__ import annotations

import cv2
import numpy as np


def context_bounds(top: int, left: int, height: int, width: int, context: int) -> tuple[int, int, int, int]:
    """``(top, left, bottom, right)`` of the context window of a crop (may reach outside the image).

    >>> context_bounds(100, 50, 32, 32, 2)
    (84, 34, 148, 98)
    """
    top, left = top - (context - 1) * height // 2, left - (context - 1) * width // 2
    return top, left, top + context * height, left + context * width


def context_window(image: np.ndarray, top: int, left: int, height: int, width: int, context: int) -> np.ndarray:
    """The context of the crop ``image[top:top+height, left:left+width]``: ``(height, width, C)``,
    same dtype (see the module docstring)."""
    y0, x0, y1, x1 = context_bounds(top, left, height, width, context)
    rows, cols = image.shape[:2]
    inside = image[max(0, y0) : min(rows, y1), max(0, x0) : min(cols, x1)]
    pads = ((max(0, -y0), max(0, y1 - rows)), (max(0, -x0), max(0, x1 - cols))) + ((0, 0),) * (image.ndim - 2)
    window = np.pad(inside, pads, mode="reflect") if any(a or b for a, b in pads) else inside
    return cv2.resize(np.ascontiguousarray(window), (width, height), interpolation=cv2.INTER_AREA).reshape(
        height, width, *image.shape[2:])
