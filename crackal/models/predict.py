"""Class-probability maps for whole images of any size: tiled, blended, optionally flip-averaged."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch
from torch import nn

from crackal.data.context import context_window
from crackal.data.transforms import to_tensor
from crackal.models.outputs import class_probabilities
from crackal.models.tiling import TileBlender, tile_boxes

DEFAULT_TILE = 512
FLIPS = ((), (-1,), (-2,), (-2, -1))


class Engine(Protocol):
    """Anything that turns a normalised batch into class probabilities, like a PyTorch model does."""

    def probabilities(self, batch: torch.Tensor, tta: bool = False) -> torch.Tensor:
        """``(N, C, H, W)`` class probabilities of a normalised batch ``(N, 3, H, W)``."""
        ...


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter."""
    return next(model.parameters()).device


@torch.inference_mode()
def forward_probabilities(model: nn.Module, batch: torch.Tensor, tta: bool = False) -> torch.Tensor:
    """``(N, C, H, W)`` class probabilities for a normalised batch; ``tta`` averages the 4 flips."""
    device = model_device(model)
    batch = batch.to(device)
    if device.type == "cpu":
        batch = batch.contiguous(memory_format=torch.channels_last)
    flips = FLIPS if tta else FLIPS[:1]
    total: torch.Tensor | None = None
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        for dims in flips:
            x = batch.flip(dims) if dims else batch
            probs = class_probabilities(model(x))
            probs = probs.flip(dims) if dims else probs
            total = probs if total is None else total + probs
    assert total is not None  # flips is never empty
    return (total / len(flips)).float()


def _forward(model) -> Callable[[torch.Tensor, bool], torch.Tensor]:
    """A PyTorch model's ``forward_probabilities``, or another engine's ``probabilities`` method."""
    if isinstance(model, nn.Module):
        model.eval()
        return lambda batch, tta: forward_probabilities(model, batch, tta)
    return model.probabilities


def tile_input(image: np.ndarray, tensor: torch.Tensor, box: tuple[int, int, int, int], context: int = 1) -> torch.Tensor:
    """The network's input for the tile ``box`` of ``image`` (``tensor`` is ``to_tensor(image)``):
    its pixels, stacked with its context window from the image around it when ``context`` > 1."""
    top, left, bottom, right = box
    crop = tensor[:, top:bottom, left:right]
    if context == 1:
        return crop
    return torch.cat([crop, to_tensor(context_window(image, top, left, bottom - top, right - left, context))])


def predict_image(
    model: nn.Module | Engine,
    image: np.ndarray,
    tile_size: int = DEFAULT_TILE,
    overlap: int = 64,
    tta: bool = False,
    batch_size: int = 4,
) -> np.ndarray:
    """Class probabilities ``(C, H, W) float32`` for an ``(H, W, 3) uint8`` image.

    Images no larger than ``tile_size`` on both sides go through the model whole; larger
    ones are cut into overlapping tiles whose outputs are blended (see ``tiling``). A two-scale
    model (``model.context`` > 1) gets each tile stacked with its context window taken from the
    image around it (``crackal.data.context``).
    The model is put in eval mode. ``model`` may also be another engine (an ``Engine``, such as
    ``crackal.inference.onnx.OnnxSegmenter``): the tiling and blending are the same.
    """
    forward = _forward(model)
    height, width = image.shape[:2]
    tensor = to_tensor(image)
    context = getattr(model, "context", 1)
    boxes = tile_boxes(height, width, tile_size, overlap)
    if len(boxes) == 1:
        return forward(tile_input(image, tensor, boxes[0], context)[None], tta)[0].cpu().numpy()
    blender = None
    for i in range(0, len(boxes), batch_size):
        chunk = boxes[i : i + batch_size]
        tiles = torch.stack([tile_input(image, tensor, box, context) for box in chunk])
        probs = forward(tiles, tta).cpu().numpy()
        if blender is None:
            blender = TileBlender(probs.shape[1], height, width)
        for box, p in zip(chunk, probs):
            blender.add(p, box, overlap)
    assert blender is not None  # more than one box: the loop ran
    return blender.result()
