"""From logits to class logits/probabilities: a binary model's single sigmoid channel becomes
two classes (background, crack) so every later step sees ``(N, C >= 2, H, W)``."""

from __future__ import annotations

import torch


def class_logits(logits: torch.Tensor) -> torch.Tensor:
    """``(N, 1, H, W)`` sigmoid logits -> ``(N, 2, H, W)`` softmax logits ``[0, z]``; others unchanged.

    ``softmax([0, z]) = [sigmoid(-z), sigmoid(z)]``, so cross-entropy on the result equals
    binary cross-entropy on ``z``.

    >>> class_logits(torch.zeros(1, 1, 2, 2)).softmax(1)[0, :, 0, 0]
    tensor([0.5000, 0.5000])
    """
    if logits.shape[1] == 1:
        return torch.cat([torch.zeros_like(logits), logits], dim=1)
    return logits


def class_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Class probabilities ``(N, C, H, W)`` with ``C >= 2`` from any crackal model's logits."""
    return class_logits(logits).float().softmax(dim=1)
