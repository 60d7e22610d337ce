"""Learning curves: a score against the number of labelled images."""

from __future__ import annotations

import numpy as np


def labels_to_reach(x: np.ndarray, f1: np.ndarray, target: float) -> int | None:
    """The first labelled count whose score reaches ``target`` (None if none does).

    >>> labels_to_reach(np.array([10, 20, 30]), np.array([0.5, 0.7, 0.8]), 0.7)
    20
    """
    hits = np.nonzero(f1 >= target)[0]
    return int(x[hits[0]]) if len(hits) else None


def curve_area(x: np.ndarray, f1: np.ndarray) -> float:
    """Mean F1 over the labelled range (area under the learning curve / its width)."""
    if len(x) < 2:
        return float(f1[0]) if len(f1) else float("nan")
    return float(np.trapezoid(f1, x) / (x[-1] - x[0]))
