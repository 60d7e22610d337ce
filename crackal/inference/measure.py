"""Measurements of predicted defects: area (pixels, square metres), crack length and mean width."""

from __future__ import annotations

import numpy as np
from skimage.morphology import skeletonize


def crack_length_px(mask: np.ndarray) -> float:
    """Centre-line length of a binary crack mask, in pixels.

    The mask is thinned to a one-pixel skeleton; each step between 8-connected skeleton
    pixels counts 1 (straight) or sqrt(2) (diagonal), each counted once.

    >>> m = np.zeros((9, 9), bool); m[4, 1:8] = True
    >>> crack_length_px(m)
    6.0
    """
    skeleton = skeletonize(mask.astype(bool))
    straight = (skeleton[:, 1:] & skeleton[:, :-1]).sum() + (skeleton[1:, :] & skeleton[:-1, :]).sum()
    diagonal = (skeleton[1:, 1:] & skeleton[:-1, :-1]).sum() + (skeleton[1:, :-1] & skeleton[:-1, 1:]).sum()
    # a diagonal step that also has a straight path around it (an L-corner) is not extra length
    corners = (skeleton[1:, 1:] & skeleton[:-1, :-1] & (skeleton[:-1, 1:] | skeleton[1:, :-1])).sum()
    corners += (skeleton[1:, :-1] & skeleton[:-1, 1:] & (skeleton[:-1, :-1] | skeleton[1:, 1:])).sum()
    return float(straight + np.sqrt(2) * (diagonal - corners))


def measure_defects(class_mask: np.ndarray, class_names: list[str], gsd_m: float | None = None) -> dict:
    """Per defect class: area in pixels (and m^2 when ``gsd_m``, metres per pixel, is given);
    for cracks also centre-line length and mean width (area / length)."""
    total = class_mask.size
    result = {}
    for index, name in enumerate(class_names[1:], start=1):
        mask = class_mask == index
        area = int(mask.sum())
        entry: dict = {"area_px": area, "area_fraction": round(area / total, 6)}
        if gsd_m is not None:
            entry["area_m2"] = round(area * gsd_m**2, 6)
        if "crack" in name and area:
            length = crack_length_px(mask)
            entry["length_px"] = round(length, 1)
            entry["mean_width_px"] = round(area / max(length, 1.0), 2)
            if gsd_m is not None:
                entry["length_m"] = round(length * gsd_m, 4)
                entry["mean_width_mm"] = round(1000 * gsd_m * area / max(length, 1.0), 2)
        result[name] = entry
    return result
