"""The patch classifier as a sliding window over an image of any size: a coarse defect map.

Windows of ``window`` px start every ``stride`` px, and one more is placed flush with the
right / bottom border when the stride does not land there, so every pixel is covered (an
image smaller than the window is padded by reflection). Each window is resized to the
classifier's input size and classified; the heat map of a pixel is the mean of the class
probabilities of the windows that cover it (with a stride longer than the window, a pixel
between windows takes the value of the nearest covered pixel).

The classifier is a PyTorch model or any callable ``batch -> (N, K) probabilities`` (an
``OnnxClassifier`` runs the ONNX export): ``patch_probabilities`` makes the one from the other.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from crackal.data.transforms import to_tensor
from crackal.errors import CrackalError

ProbabilityFn = Callable[[torch.Tensor], torch.Tensor]


def patch_probabilities(model: nn.Module | ProbabilityFn) -> ProbabilityFn:
    """``batch -> (N, K)`` class probabilities on the CPU: a PyTorch classifier's softmax (eval mode,
    on the model's device); any other callable (``OnnxClassifier``) is returned as it is."""
    if not isinstance(model, nn.Module):
        return model
    model.eval()
    device = next(model.parameters()).device
    return lambda batch: model(batch.to(device)).float().softmax(1).cpu()


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Start offsets of the windows along one axis.

    >>> window_starts(10, 4, 3)
    [0, 3, 6]
    >>> window_starts(11, 4, 3)
    [0, 3, 6, 7]
    >>> window_starts(3, 4, 3)
    [0]
    """
    if window < 1 or stride < 1:
        raise CrackalError(f"the window and the stride must be at least 1 px, got {window} and {stride}")
    if length <= window:
        return [0]
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


@torch.inference_mode()
def sliding_window(
    model: nn.Module | ProbabilityFn,
    image: np.ndarray,
    window: int,
    stride: int,
    batch_size: int = 64,
    input_size: int | None = None,
) -> dict:
    """Classify every window of an ``(H, W, 3) uint8`` image with ``model`` (see ``patch_probabilities``).

    Returns ``{"grid": (K, rows, cols)`` probabilities of each window, ``"heat": (K, H, W)``
    per-pixel mean over covering windows, ``"tops"``, ``"lefts"``: the window offsets}``.
    """
    classify = patch_probabilities(model)
    height, width = image.shape[:2]
    tensor = to_tensor(image)
    ph, pw = max(0, window - height), max(0, window - width)
    if ph or pw:
        mode = "reflect" if ph < height and pw < width else "replicate"
        tensor = F.pad(tensor[None], (0, pw, 0, ph), mode=mode)[0]
    tops, lefts = window_starts(height, window, stride), window_starts(width, window, stride)
    boxes = [(t, l) for t in tops for l in lefts]
    batches = []
    for start in range(0, len(boxes), batch_size):
        batch = torch.stack([tensor[:, t : t + window, l : l + window] for t, l in boxes[start : start + batch_size]])
        if input_size and input_size != window:
            batch = F.interpolate(batch, size=(input_size, input_size), mode="bilinear", antialias=True, align_corners=False)
        batches.append(classify(batch))
    probs = torch.cat(batches).numpy()  # (windows, K)
    classes = probs.shape[1]
    grid = probs.T.reshape(classes, len(tops), len(lefts))
    total = np.zeros((classes, height + ph, width + pw), np.float32)
    count = np.zeros((height + ph, width + pw), np.float32)
    for (t, l), p in zip(boxes, probs):
        total[:, t : t + window, l : l + window] += p[:, None, None]
        count[t : t + window, l : l + window] += 1
    heat = total / np.maximum(count, 1)
    if (count == 0).any():  # a stride longer than the window leaves gaps: nearest covered pixel
        from scipy import ndimage

        _, (iy, ix) = ndimage.distance_transform_edt(count == 0, return_indices=True)
        heat = heat[:, iy, ix]
    heat = heat[:, :height, :width]
    return {"grid": grid, "heat": heat, "tops": tops, "lefts": lefts}


def heat_overlay(image: np.ndarray, defect_probability: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """The image with the defect probability painted in red (transparent at 0, ``alpha`` at 1)."""
    weight = (alpha * defect_probability)[:, :, None]
    red = np.array([255.0, 40.0, 40.0])
    return ((1 - weight) * image + weight * red).clip(0, 255).astype(np.uint8)
