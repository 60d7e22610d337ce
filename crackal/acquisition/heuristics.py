"""Pixel-level acquisition heuristics from the moments of I probability samples.

All take ``SampleStats`` (``(N, C, H, W)`` moments with ``C >= 2``: a binary model's single
sigmoid channel has already been expanded to background/crack) and return ``(N, H, W)``
scores where higher means "label this".
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from crackal.errors import choose
from crackal.options import STRATEGIES, Strategy  # noqa: F401  (re-exported: the heuristics below, and random)
from crackal.uncertainty.stats import SampleStats, entropy


def bald(stats: SampleStats) -> torch.Tensor:
    """Mutual information between prediction and weights: H[mean p] - mean H[p]."""
    return (entropy(stats.mean) - stats.mean_entropy).clamp(min=0)


def predictive_entropy(stats: SampleStats) -> torch.Tensor:
    """Entropy of the mean prediction."""
    return entropy(stats.mean)


def variance(stats: SampleStats) -> torch.Tensor:
    """Mean over classes of the variance of the class probability across samples."""
    return (stats.mean_sq - stats.mean**2).clamp(min=0).mean(dim=1)


def margin(stats: SampleStats) -> torch.Tensor:
    """1 - (top class probability - second class probability) of the mean prediction."""
    top2 = stats.mean.topk(2, dim=1).values
    return 1 - (top2[:, 0] - top2[:, 1])


HEURISTICS: dict[str, Callable[[SampleStats], torch.Tensor]] = {
    "bald": bald, "entropy": predictive_entropy, "variance": variance, "margin": margin,
}


def pixel_scores(stats: SampleStats, heuristic: str) -> torch.Tensor:
    """``(N, H, W)`` scores of one heuristic (``random`` has no pixel scores)."""
    return choose(HEURISTICS, heuristic, "strategy")(stats)
