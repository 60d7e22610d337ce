"""A small patch classifier: conv-BN-ReLU blocks, global pooling, one logit per class
(softmax, so more damage types than crack / no crack can be added)."""

from __future__ import annotations

import torch
from torch import nn


class PatchClassifier(nn.Module):
    """``(N, 3, h, w)`` patches -> ``(N, num_classes)`` logits; each block halves the size.

    >>> PatchClassifier()(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 2])
    """

    def __init__(self, num_classes: int = 2, widths: tuple[int, ...] = (16, 32, 64, 64)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for width in widths:
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            channels = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` for patches ``(N, 3, h, w)``."""
        return self.classifier(self.features(x).mean(dim=(2, 3)))
