"""Where training crops come from, for images whose defect pixels are rare.

``CropSampler`` picks crop windows in one of three ways:

* ``random``: uniform windows (what a plain random crop does);
* ``undersample``: uniform windows, but a background-only window is kept only with
  probability ``background_keep`` and redrawn otherwise (random under-sampling);
* ``share``: a window holding defect pixels with probability ``positive_share`` (centred
  anywhere around a random defect pixel), otherwise a background-only window when one is
  found; the precision-recall flow moves ``positive_share`` during training.

``CropDataset`` wraps a ``SegmentationDataset`` and yields augmented crops.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from crackal.data.dataset import IGNORE_INDEX, SegmentationDataset
from crackal.data.transforms import augment_transform, to_tensor
from crackal.errors import CrackalError

SAMPLING_MODES = ("random", "undersample", "share")
SAMPLING_FOR_BALANCE = {"none": "random", "undersample": "undersample", "prf": "share"}  # TrainConfig.balance


class CropSampler:
    """Chooses the top-left corner of each training crop (seeded, see ``set_seed``)."""

    def __init__(
        self,
        crop_size: int,
        mode: str = "random",
        positive_share: float = 0.5,
        background_keep: float = 0.25,
        tries: int = 10,
        seed: int = 0,
    ) -> None:
        if mode not in SAMPLING_MODES:
            raise CrackalError(f"unknown crop sampling {mode!r}; choose one of {', '.join(SAMPLING_MODES)}")
        if not (0 <= positive_share <= 1 and 0 < background_keep <= 1):
            raise CrackalError("positive_share must be in [0, 1] and background_keep in (0, 1]")
        self.crop_size, self.mode = crop_size, mode
        self.positive_share, self.background_keep, self.tries = positive_share, background_keep, tries
        self.set_seed(seed)

    def set_seed(self, seed: int) -> None:
        """Restart the random draws of crop windows from ``seed``."""
        self.rng = np.random.default_rng(seed)

    def _uniform(self, height: int, width: int) -> tuple[int, int]:
        size = self.crop_size
        return int(self.rng.integers(height - size + 1)), int(self.rng.integers(width - size + 1))

    def _holds_defect(self, defect: np.ndarray, top: int, left: int) -> bool:
        return bool(defect[top : top + self.crop_size, left : left + self.crop_size].any())

    def _around(self, defect: np.ndarray) -> tuple[int, int]:
        """A window containing a random defect pixel at a random place inside it."""
        height, width = defect.shape
        ys, xs = np.nonzero(defect)
        pick = int(self.rng.integers(len(ys)))
        y, x, size = int(ys[pick]), int(xs[pick]), self.crop_size
        top = int(self.rng.integers(max(0, y - size + 1), min(y, height - size) + 1))
        left = int(self.rng.integers(max(0, x - size + 1), min(x, width - size) + 1))
        return top, left

    def window(self, mask: np.ndarray) -> tuple[int, int]:
        """Top-left corner of a ``crop_size`` window in a mask at least that large."""
        height, width = mask.shape
        defect = (mask > 0) & (mask != IGNORE_INDEX)
        if self.mode == "random" or not defect.any():
            return self._uniform(height, width)
        if self.mode == "share" and self.rng.random() < self.positive_share:
            return self._around(defect)
        corner = self._uniform(height, width)
        for _ in range(self.tries):
            holds = self._holds_defect(defect, *corner)
            if self.mode == "share" and not holds:
                break
            if self.mode == "undersample" and (holds or self.rng.random() < self.background_keep):
                break
            corner = self._uniform(height, width)
        return corner


def pad_to(image: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Reflect-pad an image and its mask so that both sides are at least ``size``."""
    bottom, right = max(0, size - image.shape[0]), max(0, size - image.shape[1])
    if not (bottom or right):
        return image, mask
    border = cv2.BORDER_REFLECT_101
    return (cv2.copyMakeBorder(image, 0, bottom, 0, right, border),
            cv2.copyMakeBorder(mask, 0, bottom, 0, right, border))


class CropDataset(Dataset):
    """Augmented training crops of a ``SegmentationDataset``, windows chosen by a sampler."""

    def __init__(self, base: SegmentationDataset, sampler: CropSampler) -> None:
        self.base, self.sampler = base, sampler
        self.augment = augment_transform()

    def set_seed(self, seed: int) -> None:
        """Seed the crop windows and the augmentation (an epoch can be replayed exactly)."""
        self.sampler.set_seed(seed)
        self.augment.set_random_seed(seed)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict:
        image, mask = pad_to(*self.base.load(index), self.sampler.crop_size)
        top, left = self.sampler.window(mask)
        size = self.sampler.crop_size
        out = self.augment(image=image[top : top + size, left : left + size], mask=mask[top : top + size, left : left + size])
        return {
            "image": to_tensor(out["image"]),
            "mask": torch.from_numpy(np.ascontiguousarray(out["mask"])).long(),
            "name": self.base.pairs[index].name,
        }
