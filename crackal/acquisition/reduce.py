"""Reducing pixel scores ``(N, H, W)`` to one score per image ``(N,)``."""

from __future__ import annotations

from typing import Literal, get_args

import torch

from crackal.errors import CrackalError

Reduction = Literal["mean", "max", "topk", "crack_region"]
REDUCTIONS: tuple[str, ...] = get_args(Reduction)


def reduce_scores(
    scores: torch.Tensor,
    reduction: Reduction = "mean",
    defect_probability: torch.Tensor | None = None,
    top_fraction: float = 0.05,
    region_threshold: float = 0.2,
) -> torch.Tensor:
    """One score per image.

    ``mean``/``max`` over all pixels; ``topk``: mean of the ``top_fraction`` highest pixels;
    ``crack_region``: mean over the pixels whose defect probability (``1 - P(background)``,
    ``(N, H, W)``) is at least ``region_threshold``, 0 for an image with no such pixel.

    >>> reduce_scores(torch.tensor([[[0.0, 1.0], [0.0, 3.0]]]), "topk", top_fraction=0.5)
    tensor([2.])
    """
    flat = scores.flatten(1).float()
    if reduction == "mean":
        return flat.mean(1)
    if reduction == "max":
        return flat.max(1).values
    if reduction == "topk":
        k = max(1, int(round(top_fraction * flat.shape[1])))
        return flat.topk(k, dim=1).values.mean(1)
    if reduction == "crack_region":
        if defect_probability is None:
            raise ValueError("crack_region needs the defect probability of each pixel")
        region = (defect_probability.flatten(1) >= region_threshold).float()
        return (flat * region).sum(1) / region.sum(1).clamp(min=1)
    raise CrackalError(f"unknown reduction {reduction!r}; choose one of {', '.join(REDUCTIONS)}")
