"""Losses for imbalanced segmentation: weighted cross-entropy, Dice, focal, adaptive weighted
cross-entropy, and their sums.

All take raw logits ``(N, C, H, W)`` (``C = 1`` for a binary sigmoid model) and class targets
``(N, H, W)``; pixels equal to ``ignore_index`` are left out.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from crackal.data.io import IGNORE_INDEX
from crackal.errors import choose
from crackal.models.outputs import class_logits
from crackal.options import WEIGHTINGS, Weighting, parse_loss


def class_weights(pixel_counts, method: Weighting = "inverse", max_weight: float = 50.0) -> torch.Tensor:
    """Class weights from the pixel count of each class in the current training set.

    ``inverse``: ``total / (C * count_c)`` (a class holding 1/C of the pixels weighs 1);
    ``sqrt_inverse``: its square root; ``median``: median frequency balancing
    (``median_freq / freq_c``); ``none``: all ones. A class with no labelled pixel yet gets the
    largest weight; weights are capped at ``max_weight``.

    >>> class_weights([98, 2]).tolist()
    [0.5102040767669678, 25.0]
    """
    counts = np.asarray(pixel_counts, dtype=np.float64)
    choose(WEIGHTINGS, method, "class_weighting")
    if method == "none" or counts.sum() == 0:
        return torch.ones(len(counts))
    present = counts > 0
    freq = counts / counts.sum()
    weights = np.zeros_like(freq)
    if method == "median":
        weights[present] = np.median(freq[present]) / freq[present]
    else:
        weights[present] = 1.0 / (len(counts) * freq[present])
        if method == "sqrt_inverse":
            weights = np.sqrt(weights)
    weights[~present] = weights[present].max()
    return torch.tensor(np.minimum(weights, max_weight), dtype=torch.float32)


def weighted_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """Cross-entropy with per-class weights (normalised by the summed weights, as PyTorch does)."""
    weights = None if weights is None else weights.to(logits.device, torch.float32)
    return F.cross_entropy(class_logits(logits).float(), target, weight=weights, ignore_index=ignore_index)


def dice_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int = IGNORE_INDEX,
    smooth: float = 1.0,
    recall_weight: float = 1.0,
) -> torch.Tensor:
    """1 - soft Dice of the defect classes (not background), pooled over the batch.

    ``recall_weight`` w != 1 makes it the Tversky loss ``TP / (TP + FP / (1 + w) + w FN / (1 + w))``:
    missed defect pixels cost w times as much as false alarms (w = 1 is Dice).
    """
    probs = class_logits(logits).float().softmax(dim=1)
    valid = (target != ignore_index).unsqueeze(1)
    onehot = F.one_hot(target.clamp(max=probs.shape[1] - 1), probs.shape[1]).permute(0, 3, 1, 2).float()
    probs, onehot = probs * valid, onehot * valid
    dims = (0, 2, 3)
    tp = (probs * onehot).sum(dims)
    fp, fn = probs.sum(dims) - tp, onehot.sum(dims) - tp
    alpha, beta = 2 / (1 + recall_weight), 2 * recall_weight / (1 + recall_weight)
    dice = (2 * tp + smooth) / (2 * tp + alpha * fp + beta * fn + smooth)
    return 1.0 - dice[1:].mean()


def focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    weights: torch.Tensor | None = None,
    gamma: float = 2.0,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """Focal loss ``-(1 - p_t)^gamma log p_t`` with optional per-class weights (alpha)."""
    log_probs = class_logits(logits).float().log_softmax(dim=1)
    valid = target != ignore_index
    safe = target.masked_fill(~valid, 0)
    log_pt = log_probs.gather(1, safe.unsqueeze(1)).squeeze(1)
    loss = -((1 - log_pt.exp()) ** gamma) * log_pt
    alpha = torch.ones_like(loss) if weights is None else weights.to(loss.device)[safe]
    alpha = alpha * valid
    return (loss * alpha).sum() / alpha.sum().clamp(min=1e-8)


def adaptive_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int = IGNORE_INDEX, max_weight: float = 50.0
) -> torch.Tensor:
    """Cross-entropy weighted per batch by the predicted class proportions.

    Each class weighs ``1 / (C * predicted share)`` (capped at ``max_weight``), the shares being
    the mean predicted probabilities over the batch's valid pixels (no gradient through them):
    for a binary model the crack weight is the predicted background / foreground ratio.
    """
    class_logits_ = class_logits(logits).float()
    with torch.no_grad():
        probs = class_logits_.softmax(dim=1)
        valid = (target != ignore_index).unsqueeze(1)
        share = (probs * valid).sum((0, 2, 3)) / valid.sum().clamp(min=1)
        weights = (1.0 / (probs.shape[1] * share.clamp(min=1e-6))).clamp(max=max_weight)
    return F.cross_entropy(class_logits_, target, weight=weights, ignore_index=ignore_index)


# Each term of a loss sum: (the SegmentationLoss module, logits, target) -> scalar.
LossTerm = Callable[["SegmentationLoss", torch.Tensor, torch.Tensor], torch.Tensor]
LOSS_TERMS: dict[str, LossTerm] = {
    "ce": lambda loss, logits, target: weighted_cross_entropy(logits, target, loss.weights()),
    "dice": lambda loss, logits, target: dice_loss(logits, target, recall_weight=loss.recall_weight),
    "focal": lambda loss, logits, target: focal_loss(logits, target, loss.weights(), loss.gamma),
    "adaptive": lambda loss, logits, target: adaptive_cross_entropy(logits, target),
}


class SegmentationLoss(nn.Module):
    """A sum of loss terms named like ``"ce+dice"`` (the terms of ``LOSS_TERMS``).

    ``class_weights`` (a buffer) weights ``ce`` and ``focal``; call ``set_class_weights`` when
    the labelled set changes (every active-learning round). ``recall_weight`` turns ``dice``
    into a Tversky loss (see ``dice_loss``); the precision-recall flow moves it.

    >>> loss = SegmentationLoss("ce+dice", torch.tensor([0.5, 25.0]))
    >>> float(loss(torch.zeros(1, 1, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long))) > 0
    True
    """

    class_weights: torch.Tensor  # a buffer, empty when unweighted

    def __init__(self, terms: str = "ce+dice", class_weights: torch.Tensor | None = None, gamma: float = 2.0) -> None:
        super().__init__()
        self.terms = parse_loss(terms)
        self.gamma: float = gamma
        self.recall_weight: float = 1.0
        self.register_buffer("class_weights", class_weights if class_weights is not None else torch.empty(0))

    def set_class_weights(self, weights: torch.Tensor) -> None:
        """Replace the class weights (moved to the loss's device)."""
        self.class_weights = weights.to(self.class_weights.device)

    def weights(self) -> torch.Tensor | None:
        """The class weights, or None when the loss is unweighted."""
        return self.class_weights if self.class_weights.numel() else None

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Sum of the terms for logits ``(N, C, H, W)`` and class indices ``(N, H, W)``: a float32 scalar."""
        total = logits.new_zeros((), dtype=torch.float32)
        for term in self.terms:
            total = total + LOSS_TERMS[term](self, logits, target)
        return total


__all__ = [
    "LOSS_TERMS",
    "SegmentationLoss",
    "adaptive_cross_entropy",
    "class_weights",
    "dice_loss",
    "focal_loss",
    "parse_loss",
    "weighted_cross_entropy",
]
