"""Running a detector on ``uint8`` images: boxes, scores and labels as ``ImageBoxes``."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from crackal.data.boxes import ImageBoxes


def image_tensor(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3) uint8`` -> ``(3, H, W) float32`` in ``[0, 1]`` (the detector normalises it)."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0


def as_image_boxes(detection: dict[str, torch.Tensor]) -> ImageBoxes:
    """A torchvision detection (``boxes``, ``labels``, ``scores`` tensors) as ``ImageBoxes``."""
    return ImageBoxes(detection["boxes"].float().cpu().numpy(), detection["labels"].cpu().numpy(),
                      detection["scores"].float().cpu().numpy())


@torch.inference_mode()
def detect_images(model: nn.Module, images: list[torch.Tensor]) -> list[ImageBoxes]:
    """Detections for a list of ``[0, 1]`` image tensors (eval mode, float32: box coordinates in
    bf16 would be 4-8 px coarse on large images)."""
    model.eval()
    device = next(model.parameters()).device
    outputs = model([image.to(device) for image in images])
    return [as_image_boxes(o) for o in outputs]


def detect_image(model: nn.Module, image: np.ndarray) -> ImageBoxes:
    """Detections for one ``(H, W, 3) uint8`` image."""
    return detect_images(model, [image_tensor(image)])[0]
