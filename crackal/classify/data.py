"""Folders of labelled patches.

Two layouts (``find_patches(root)``):

* ``root/labels.csv`` with columns ``path,label`` (paths relative to ``root``, integer labels,
  0 = no defect), class names from ``root/classes.json`` or ``no_crack, crack``;
* one sub-folder per class (``root/Negative/``, ``root/Positive/`` ...): a folder named like
  "no defect" (negative, no_crack, background, ...) is class 0, the others follow by name.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from crackal.data.io import list_images, read_image
from crackal.data.layout import read_class_names
from crackal.errors import CrackalError

NEGATIVE_NAMES = ("negative", "no_crack", "nocrack", "non_crack", "noncrack", "background", "intact", "0")
PATCH_CLASSES = ["no_crack", "crack"]


def _from_csv(root: Path) -> tuple[list[tuple[Path, int]], list[str]]:
    items = []
    with (root / "labels.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"path", "label"} <= set(reader.fieldnames):
            raise CrackalError(f"{root / 'labels.csv'} needs the columns path,label")
        for line, row in enumerate(reader, start=2):
            try:
                items.append((root / row["path"], int(row["label"])))
            except ValueError:
                raise CrackalError(f"{root / 'labels.csv'} line {line}: label {row['label']!r} is not an integer class index") from None
    labels = {label for _, label in items}
    names = read_class_names(root) or (PATCH_CLASSES if labels <= {0, 1} else [str(i) for i in range(max(labels) + 1)])
    if min(labels, default=0) < 0 or max(labels, default=0) >= len(names):
        raise CrackalError(f"{root / 'labels.csv'}: labels must be 0..{len(names) - 1} (one per class in classes.json)")
    missing = [p for p, _ in items if not p.is_file()]
    if missing:
        raise CrackalError(f"{missing[0]} is listed in labels.csv but not found ({len(missing)} missing); fix the paths")
    return items, names


def find_patches(root: str | Path) -> tuple[list[tuple[Path, int]], list[str]]:
    """``[(path, label)]`` and the class names of a patch dataset (see the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise CrackalError(f"patch folder not found: {root}; check the path")
    if (root / "labels.csv").is_file():
        items, names = _from_csv(root)
    else:
        folders = sorted((d for d in root.iterdir() if d.is_dir() and list_images(d)), key=lambda d: (d.name.lower() not in NEGATIVE_NAMES, d.name))
        if len(folders) < 2:
            raise CrackalError(f"{root} needs labels.csv (path,label) or one sub-folder of patches per class (e.g. Negative/, Positive/)")
        names = [d.name for d in folders]
        items = [(p, c) for c, d in enumerate(folders) for p in list_images(d)]
    if not items:
        raise CrackalError(f"no patches found in {root}")
    return items, names


def load_patches(paths: list[Path], size: int) -> np.ndarray:
    """Patches resized to ``size x size``: ``(N, size, size, 3) uint8``."""
    out = np.empty((len(paths), size, size, 3), np.uint8)
    for i, path in enumerate(paths):
        image = read_image(path)
        if image.shape[:2] != (size, size):
            image = np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
        out[i] = image
    return out
