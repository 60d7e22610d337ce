"""Bi-temporal (change-detection) data: two co-registered images of one place at two dates
and a change mask, in folders ``A/`` (before), ``B/`` (after) and ``masks/`` with the same
names; tiles of them, labelled changed / unchanged by their share of changed pixels.

A pair goes into a model as one ``(H, W, 6) uint8`` array (A's channels, then B's): the
input of ``create_model("siamese_unet")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crackal.data.io import list_images, read_image, read_raw_mask, to_class_mask, write_png
from crackal.errors import CrackalError

# Tile labels from the share of changed pixels: over CHANGED_ABOVE changed, under
# UNCHANGED_BELOW unchanged, in between ignored (left out of pools and test sets).
UNCHANGED_BELOW, CHANGED_ABOVE = 0.01, 0.03
CHANGED, UNCHANGED, IGNORED = 1, 0, -1
MASK_FOLDERS = ("masks", "label", "labels", "OUT")


@dataclass(frozen=True)
class BitemporalPair:
    """Where one pair's before image, after image and change mask live."""

    a: Path
    b: Path
    mask: Path

    @property
    def name(self) -> str:
        """The pair's name: the stem of its before image."""
        return self.a.stem


def find_bitemporal(root: str | Path) -> list[BitemporalPair]:
    """Every name present in ``root/A``, ``root/B`` and ``root/masks`` (masks may be any image
    suffix); a name missing from one folder is an error that names it."""
    root = Path(root)
    if not (root / "A").is_dir() or not (root / "B").is_dir():
        raise CrackalError(f"{root} needs folders A/ (before) and B/ (after) with same-named images, and masks/")
    masks_dir = next((root / m for m in MASK_FOLDERS if (root / m).is_dir()), None)
    if masks_dir is None:
        raise CrackalError(f"{root} has no masks/ folder of change masks (0/255 or 0/1, same names as A/ and B/)")
    before = {p.stem: p for p in list_images(root / "A")}
    after = {p.stem: p for p in list_images(root / "B")}
    masks = {p.stem: p for p in sorted(masks_dir.iterdir()) if p.suffix.lower() in (".png", ".bmp", ".tif", ".tiff", ".jpg")}
    if not before:
        raise CrackalError(f"no images in {root / 'A'}")
    for name in before:
        missing = [folder for folder, index in (("B", after), (masks_dir.name, masks)) if name not in index]
        if missing:
            raise CrackalError(f"{name}: in A/ but not in {' or '.join(m + '/' for m in missing)} of {root}; "
                               "every pair needs all three files")
    extra = sorted(set(after) - set(before))
    if extra:
        raise CrackalError(f"{extra[0]}: in B/ but not in A/ of {root}; every pair needs all three files")
    return [BitemporalPair(before[n], after[n], masks[n]) for n in sorted(before)]


def load_bitemporal(pair: BitemporalPair, binarize: bool = False) -> dict:
    """``{"image": (H, W, 6) uint8 (A then B), "mask": (H, W) uint8 0/1, "name"}``, checked."""
    a, b = read_image(pair.a), read_image(pair.b)
    mask = to_class_mask(read_raw_mask(pair.mask), 2, pair.mask, binarize)
    if a.shape != b.shape or mask.shape != a.shape[:2]:
        raise CrackalError(
            f"{pair.name}: A is {a.shape[1]}x{a.shape[0]}, B {b.shape[1]}x{b.shape[0]}, the mask {mask.shape[1]}x{mask.shape[0]}; "
            "co-registered pairs and their masks must have one size"
        )
    return {"image": np.concatenate([a, b], 2), "mask": mask, "name": pair.name}


def write_bitemporal(out: str | Path, name: str, image_a: np.ndarray, image_b: np.ndarray, mask: np.ndarray) -> None:
    """``out/A/<name>.png``, ``out/B/<name>.png`` and ``out/masks/<name>.png`` (0/255)."""
    out = Path(out)
    write_png(out / "A" / f"{name}.png", image_a)
    write_png(out / "B" / f"{name}.png", image_b)
    write_png(out / "masks" / f"{name}.png", (mask > 0).astype(np.uint8) * 255)


def tile_labels(masks: np.ndarray, low: float = UNCHANGED_BELOW, high: float = CHANGED_ABOVE) -> np.ndarray:
    """Label of each mask ``(N, h, w)``: 1 (changed) when more than ``high`` of its pixels
    changed, 0 when fewer than ``low``, -1 (ignored) in between, boundaries included.

    >>> m = np.zeros((3, 10, 10), np.uint8); m[1, 0, :1] = 1; m[2, :1, :4] = 1
    >>> tile_labels(m).tolist()
    [0, -1, 1]
    """
    if not 0 <= low <= high <= 1:
        raise CrackalError(f"tile label thresholds must satisfy 0 <= low <= high <= 1, got {low}, {high}")
    share = (masks > 0).reshape(len(masks), -1).mean(1)
    return np.where(share > high, CHANGED, np.where(share < low, UNCHANGED, IGNORED)).astype(np.int8)


@dataclass
class TileSet:
    """Tiles of bi-temporal pairs held in memory: ``images (N, t, t, 6) uint8``,
    ``masks (N, t, t) uint8``, ``labels (N,)`` (1 / 0 / -1) and ``names``."""

    images: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    names: list[str]

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, index) -> TileSet:
        """The tiles at the positions ``index``, in that order."""
        index = np.asarray(index, dtype=np.int64)
        return TileSet(self.images[index], self.masks[index], self.labels[index], [self.names[i] for i in index])

    def labelled(self) -> TileSet:
        """Only the tiles with a label (changed or unchanged)."""
        return self.subset(np.flatnonzero(self.labels != IGNORED))

    def changed_share(self) -> float:
        """The share of changed tiles among the labelled ones (NaN when none is labelled)."""
        known = self.labels[self.labels != IGNORED]
        return float((known == CHANGED).mean()) if len(known) else float("nan")


def cut_tiles(samples: list[dict], tile: int, low: float = UNCHANGED_BELOW, high: float = CHANGED_ABOVE) -> TileSet:
    """Every full ``tile x tile`` tile of each sample (``{"image", "mask", "name"}``), named
    ``<name>_r<row>_c<col>``; the remainder at the right and bottom is dropped."""
    images, masks, names = [], [], []
    for sample in samples:
        image, mask = sample["image"], sample["mask"]
        for row in range(image.shape[0] // tile):
            for col in range(image.shape[1] // tile):
                window = (slice(row * tile, (row + 1) * tile), slice(col * tile, (col + 1) * tile))
                images.append(image[window])
                masks.append(mask[window])
                names.append(f"{sample['name']}_r{row}_c{col}")
    if not names:
        raise CrackalError(f"no {tile}x{tile} tile fits in these images; choose a smaller --tile")
    masks_array = np.stack(masks)
    return TileSet(np.stack(images), masks_array, tile_labels(masks_array, low, high), names)


def balanced_subset(tiles: TileSet, per_class: int | None = None, seed: int = 0) -> TileSet:
    """As many unchanged as changed tiles (``per_class`` of each, default: all changed tiles),
    drawn with ``seed``; ignored tiles left out."""
    rng = np.random.default_rng(seed)
    changed, unchanged = np.flatnonzero(tiles.labels == CHANGED), np.flatnonzero(tiles.labels == UNCHANGED)
    n = min(len(changed), len(unchanged)) if per_class is None else per_class
    if n < 1 or n > min(len(changed), len(unchanged)):
        raise CrackalError(
            f"a balanced set of {n} changed and {n} unchanged tiles is not possible: there are {len(changed)} changed "
            f"and {len(unchanged)} unchanged tiles; use more pairs or a smaller number per class"
        )
    return tiles.subset(np.sort(np.concatenate([rng.choice(changed, n, replace=False), rng.choice(unchanged, n, replace=False)])))
