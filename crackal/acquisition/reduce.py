"""Reducing pixel scores ``(N, H, W)`` to one score per image ``(N,)``."""

from __future__ import annotations

from collections.abc import Callable

import torch

from crackal.errors import choose
from crackal.options import DEFAULT_REDUCTION, Reduction

Reducer = Callable[[torch.Tensor, torch.Tensor | None, float, float], torch.Tensor]


def _mean(flat: torch.Tensor, defect: torch.Tensor | None, top_fraction: float, region_threshold: float) -> torch.Tensor:
    return flat.mean(1)


def _max(flat: torch.Tensor, defect: torch.Tensor | None, top_fraction: float, region_threshold: float) -> torch.Tensor:
    return flat.max(1).values


def _topk(flat: torch.Tensor, defect: torch.Tensor | None, top_fraction: float, region_threshold: float) -> torch.Tensor:
    k = max(1, int(round(top_fraction * flat.shape[1])))
    return flat.topk(k, dim=1).values.mean(1)


def _crack_region(flat: torch.Tensor, defect: torch.Tensor | None, top_fraction: float, region_threshold: float) -> torch.Tensor:
    if defect is None:
        raise ValueError("crack_region needs the defect probability of each pixel")
    region = (defect.flatten(1) >= region_threshold).float()
    return (flat * region).sum(1) / region.sum(1).clamp(min=1)


REDUCTIONS: dict[str, Reducer] = {"mean": _mean, "max": _max, "topk": _topk, "crack_region": _crack_region}


def reduce_scores(
    scores: torch.Tensor,
    reduction: Reduction = DEFAULT_REDUCTION,
    defect_probability: torch.Tensor | None = None,
    top_fraction: float = 0.05,
    region_threshold: float = 0.2,
) -> torch.Tensor:
    """One score per image from pixel scores ``(N, H, W)``.

    ``mean``/``max`` over all pixels; ``topk``: mean of the ``top_fraction`` highest pixels;
    ``crack_region``: mean over the pixels whose defect probability (``1 - P(background)``,
    ``(N, H, W)``) is at least ``region_threshold``, 0 for an image with no such pixel.

    >>> reduce_scores(torch.tensor([[[0.0, 1.0], [0.0, 3.0]]]), "topk", top_fraction=0.5)
    tensor([2.])
    """
    reducer: Reducer = choose(REDUCTIONS, reduction, "reduction")
    return reducer(scores.flatten(1).float(), defect_probability, top_fraction, region_threshold)
