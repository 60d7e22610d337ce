"""Augmentation pipelines (albumentations) and the image normalisation the models expect."""

from __future__ import annotations

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

MEAN, STD = 0.5, 0.25


def augment_transform() -> A.Compose:
    """Flips, rot90 and brightness/contrast (crops of a square size keep their shape)."""
    return A.Compose(
        [
            A.HorizontalFlip(),
            A.VerticalFlip(),
            A.RandomRotate90(),
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
        ]
    )


def train_transform(crop_size: int) -> A.Compose:
    """Random crop (padding images smaller than the crop), then ``augment_transform``."""
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
