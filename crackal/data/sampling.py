"""Where training crops come from, for images whose defect pixels are rare.

``CropSampler`` picks crop windows in one of three ways:

* ``random``: uniform windows (what a plain random crop does);
* ``undersample``: uniform windows, but a background-only window is kept only with
  probability ``background_keep`` and redrawn otherwise (random under-sampling);
* ``share``: a window holding defect pixels with probability ``positive_share`` (centred
  anywhere around a random defect pixel), otherwise a background-only window when one is
  found; the precision-recall flow moves ``positive_share`` during training.

``CropDataset`` wraps a ``SegmentationDataset`` and yields augmented crops. With
``class_aware`` p > 0, a crop is, with probability p, centred on a pixel of a defect class
drawn uniformly from the classes present in the training set (in an image holding it), so
that rare classes are seen as often as common ones; the other crops come from the sampler.
``ClassLocations`` keeps a small seeded subsample of each class's pixel positions per image
for that. ``CropDataset.crop_shares`` tells which share of the crops held each class. With ``context``
2 or 4 each crop's image stacks its context window (``crackal.data.context``): 6 channels.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from crackal.data.context import context_window
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


class ClassLocations:
    """Up to ``per_image`` seeded pixel positions of each defect class in each image.

    ``images[c]`` lists the images holding class ``c``; ``pixels[(index, c)]`` are flat
    positions (``int32``) in that image's (padded) mask: a few KB per image, whatever its size.
    """

    def __init__(self, masks, num_classes: int, per_image: int = 256, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.images: dict[int, list[int]] = {c: [] for c in range(1, num_classes)}
        self.pixels: dict[tuple[int, int], np.ndarray] = {}
        for index, mask in enumerate(masks):
            flat = mask.ravel()
            for c in np.unique(flat):
                if not 1 <= c < num_classes:
                    continue
                where = np.flatnonzero(flat == c)
                if len(where) > per_image:
                    where = rng.choice(where, per_image, replace=False)
                self.images[int(c)].append(index)
                self.pixels[(index, int(c))] = where.astype(np.int32)
        self.present = [c for c, held in self.images.items() if held]

    def draw(self, rng: np.random.Generator) -> tuple[int, int, int]:
        """``(image index, class, flat pixel position)``: a class uniformly among those present,
        an image holding it, one of its stored pixels."""
        c = self.present[int(rng.integers(len(self.present)))]
        index = self.images[c][int(rng.integers(len(self.images[c])))]
        where = self.pixels[(index, c)]
        return index, c, int(where[int(rng.integers(len(where)))])


def centred_window(y: int, x: int, height: int, width: int, size: int) -> tuple[int, int]:
    """Top-left corner of a ``size`` window centred on ``(y, x)``, moved inside the image.

    >>> centred_window(50, 3, 100, 80, 32)
    (34, 0)
    """
    return min(max(0, y - size // 2), height - size), min(max(0, x - size // 2), width - size)


def pad_to(image: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Reflect-pad an image and its mask so that both sides are at least ``size``."""
    bottom, right = max(0, size - image.shape[0]), max(0, size - image.shape[1])
    if not (bottom or right):
        return image, mask
    border = cv2.BORDER_REFLECT_101
    return (cv2.copyMakeBorder(image, 0, bottom, 0, right, border),
            cv2.copyMakeBorder(mask, 0, bottom, 0, right, border))


class CropDataset(Dataset):
    """Augmented training crops of a ``SegmentationDataset``, windows chosen by a sampler
    (and, with ``class_aware`` p > 0, centred on a rare class's pixel with probability p)."""

    def __init__(self, base: SegmentationDataset, sampler: CropSampler, class_aware: float = 0.0, context: int = 1) -> None:
        if not 0 <= class_aware <= 1:
            raise CrackalError(f"class_aware is a probability in [0, 1], got {class_aware}")
        self.base, self.sampler, self.class_aware, self.context = base, sampler, class_aware, context
        self.augment = augment_transform(context=context > 1)
        self.num_classes = base.num_classes
        self.locations = None
        if class_aware > 0:
            masks = (pad_to(*base.load(i), sampler.crop_size)[1] for i in range(len(base)))
            self.locations = ClassLocations(masks, self.num_classes)
        self.reset_counts()

    def reset_counts(self) -> None:
        """Start counting the crops holding each class afresh (once per epoch)."""
        self.crops_seen, self.class_crops = 0, np.zeros(self.num_classes, np.int64)

    def crop_shares(self) -> np.ndarray:
        """Share of the crops since ``reset_counts`` that held each class (before augmentation)."""
        return self.class_crops / max(1, self.crops_seen)

    def set_seed(self, seed: int) -> None:
        """Seed the crop windows and the augmentation (an epoch can be replayed exactly)."""
        self.sampler.set_seed(seed)
        self.augment.set_random_seed(seed)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict:
        size, rng = self.sampler.crop_size, self.sampler.rng
        if self.locations is not None and self.locations.present and rng.random() < self.class_aware:
            index, _, flat = self.locations.draw(rng)
            image, mask = pad_to(*self.base.load(index), size)
            (y, x), (height, width) = divmod(flat, mask.shape[1]), mask.shape
            top, left = centred_window(y, x, height, width, size)
        else:
            image, mask = pad_to(*self.base.load(index), size)
            top, left = self.sampler.window(mask)
        around = {"context": context_window(image, top, left, size, size, self.context)} if self.context > 1 else {}
        image, mask = image[top : top + size, left : left + size], mask[top : top + size, left : left + size]
        held = np.bincount(mask.ravel(), minlength=self.num_classes)[: self.num_classes] > 0
        self.crops_seen += 1
        self.class_crops += held
        out = self.augment(image=image, mask=mask, **around)
        tensor = to_tensor(out["image"])
        return {
            "image": torch.cat([tensor, to_tensor(out["context"])]) if around else tensor,
            "mask": torch.from_numpy(np.ascontiguousarray(out["mask"])).long(),
            "name": self.base.pairs[index].name,
        }
