"""PyTorch datasets of image/mask pairs; samples are dicts with ``image`` and ``mask``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import Dataset

from crackal.data.io import IGNORE_INDEX
from crackal.data.layout import Pair, load_pair
from crackal.data.transforms import to_tensor


class SegmentationDataset(Dataset):
    """Reads pairs from disk on access (optionally keeping them in memory).

    Each sample is ``{"image": (3, H, W) float32, "mask": (H, W) int64, "name": str}``; mask
    pixels equal to ``IGNORE_INDEX`` count neither in the loss nor in the metrics.
    """

    def __init__(
        self,
        pairs: list[Pair],
        num_classes: int,
        transform: Callable | None = None,
        binarize: bool = False,
        cache: bool = True,
    ) -> None:
        self.pairs = list(pairs)
        self.num_classes = num_classes
        self.transform = transform
        self.binarize = binarize
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = {} if cache else None

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """The untransformed ``uint8`` image and class mask."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        item = load_pair(self.pairs[index], self.num_classes, self.binarize)
        if self._cache is not None:
            self._cache[index] = item
        return item

    def __getitem__(self, index: int) -> dict:
        image, mask = self.load(index)
        if self.transform is not None:
            out = self.transform(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        return {
            "image": to_tensor(image),
            "mask": torch.from_numpy(np.ascontiguousarray(mask)).long(),
            "name": self.pairs[index].name,
        }

    def class_pixel_counts(self) -> np.ndarray:
        """Pixels of each class over the whole dataset (ignored pixels left out)."""
        counts = np.zeros(self.num_classes, dtype=np.int64)
        for index in range(len(self)):
            mask = self.load(index)[1]
            counts += np.bincount(mask[mask != IGNORE_INDEX].ravel(), minlength=self.num_classes)[: self.num_classes]
        return counts
