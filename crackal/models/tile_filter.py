"""The two-stage filter: a crack / no-crack classifier looks at every ``cell`` x ``cell``
square first, and the segmentation is kept only in the squares it accepts.

In training mode the wrapper returns the plain segmentation logits and ``filter_loss`` trains
the classifier on the same crops (a square is positive when it holds a defect pixel). In eval
mode the defect logits of rejected squares are pushed far below background, so evaluation,
prediction and reports see the two-stage output without knowing about it.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from crackal.data.io import IGNORE_INDEX
from crackal.models.patch_classifier import PatchClassifier

SUPPRESSED = 30.0  # logit margin that makes a rejected square background


class TileFilterSegmenter(nn.Module):
    """A segmenter with a crack / no-crack filter: a ``PatchClassifier`` scores every
    ``cell x cell`` square, and in eval mode the defect logits of the squares whose crack
    probability is below ``threshold`` are pushed below background.

    In training mode ``forward`` returns the segmenter's logits as they are; the classifier
    learns from ``filter_loss``."""

    def __init__(self, segmenter: nn.Module, cell: int = 64, threshold: float = 0.5) -> None:
        super().__init__()
        self.segmenter, self.cell, self.threshold = segmenter, cell, threshold
        self.classifier = PatchClassifier(2)

    def cells(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """``(N * gh * gw, C, cell, cell)`` squares of ``x`` (reflect-padded) and the grid size."""
        height, width = x.shape[-2:]
        grid = (-(-height // self.cell), -(-width // self.cell))
        pad = (0, grid[1] * self.cell - width, 0, grid[0] * self.cell - height)
        if any(pad):
            x = F.pad(x, pad, mode="reflect" if min(height, width) > max(pad) else "replicate")
        squares = x.unfold(2, self.cell, self.cell).unfold(3, self.cell, self.cell)  # N, C, gh, gw, cell, cell
        return squares.permute(0, 2, 3, 1, 4, 5).reshape(-1, x.shape[1], self.cell, self.cell), grid

    def crack_probability(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, gh, gw)`` probability that each square holds a defect."""
        squares, grid = self.cells(x)
        return self.classifier(squares.contiguous()).softmax(1)[:, 1].reshape(x.shape[0], *grid)

    def square_labels(self, mask: torch.Tensor) -> torch.Tensor:
        """1 for each square of ``mask (N, H, W)`` that holds a defect pixel, in ``cells`` order."""
        defect = ((mask > 0) & (mask != IGNORE_INDEX)).float()[:, None]
        return self.cells(defect)[0].flatten(1).amax(1).long()

    def filter_loss(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Cross-entropy of the classifier against "this square holds a defect pixel"."""
        return F.cross_entropy(self.classifier(self.cells(x)[0].contiguous()), self.square_labels(mask))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, C, H, W)``; in eval mode, squares the classifier rejects are background."""
        logits = self.segmenter(x)
        if self.training:
            return logits
        keep = self.crack_probability(x) >= self.threshold
        keep = keep.repeat_interleave(self.cell, 1).repeat_interleave(self.cell, 2)[:, None, : x.shape[2], : x.shape[3]]
        background = logits[:, :1] if logits.shape[1] > 1 else torch.zeros_like(logits)
        defect = logits[:, 1:] if logits.shape[1] > 1 else logits
        defect = torch.where(keep, defect, background - SUPPRESSED)
        return torch.cat([logits[:, :1], defect], 1) if logits.shape[1] > 1 else defect
