"""Augmentation pipelines (albumentations) and the image normalisation the models expect.

albumentations is imported when a pipeline is built (it takes about 2 s): prediction, pool
scoring and the project commands do without it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.nn import functional as F

from crackal.data.io import IGNORE_INDEX

if TYPE_CHECKING:
    import albumentations

MEAN, STD = 0.5, 0.25


def _albumentations():
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # it calls the network on import otherwise
    import albumentations

    return albumentations


def augment_transform(context: bool = False) -> albumentations.Compose:
    """Flips, rot90 and brightness/contrast (crops of a square size keep their shape); with
    ``context`` a second image, ``context=``, gets the same changes (a two-scale crop's context)."""
    A = _albumentations()
    return A.Compose(
        [
            A.HorizontalFlip(),
            A.VerticalFlip(),
            A.RandomRotate90(),
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
        ],
        additional_targets={"context": "image"} if context else None,
    )


def train_transform(crop_size: int) -> albumentations.Compose:
    """Random crop (padding images smaller than the crop), then ``augment_transform``."""
    import cv2

    A = _albumentations()
    return A.Compose(
        [
            A.PadIfNeeded(min_height=crop_size, min_width=crop_size, border_mode=cv2.BORDER_REFLECT_101),
            A.RandomCrop(height=crop_size, width=crop_size),
            *augment_transform().transforms,
        ]
    )


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """``(H, W, 3) uint8`` -> normalised ``(3, H, W) float32``."""
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float()
    return (tensor / 255.0 - MEAN) / STD


def shrink_masks(masks: torch.Tensor, factor: int, num_classes: int) -> torch.Tensor:
    """Class masks ``(N, H, W)`` shrunk ``factor`` times (H and W divisible by it): each block takes
    its most frequent class, a defect pixel counting ``factor`` times a background one, so a
    one-pixel line through a block keeps the block (thin cracks survive); a block with no valid
    pixel is ``IGNORE_INDEX``.

    >>> mask = torch.zeros(1, 4, 4, dtype=torch.long); mask[0, :, 1] = 1  # a vertical crack line
    >>> shrink_masks(mask, 4, 2).tolist()
    [[[1]]]
    """
    valid = masks != IGNORE_INDEX
    onehot = F.one_hot(masks.masked_fill(~valid, 0), num_classes).permute(0, 3, 1, 2).float() * valid.unsqueeze(1)
    counts = F.avg_pool2d(onehot, factor)
    counts[:, 1:] *= factor
    shrunk = counts.argmax(1)
    return shrunk.masked_fill(counts.sum(1) == 0, IGNORE_INDEX)
