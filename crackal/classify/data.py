"""Folders of labelled patches.

Two layouts (``find_patches(root)``):

* ``root/labels.csv`` with columns ``path,label`` (paths relative to ``root`` that must stay
  inside it, each listed once; integer labels, 0 = no defect), class names from
  ``root/classes.json`` or ``no_crack, crack``;
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


def _patch_path(root: Path, value: str | None, line: int) -> Path:
    """``root / value``, refused unless it stays inside ``root`` (after resolving ``..`` and links)."""
    csv_path = root / "labels.csv"
    if not value or not value.strip():
        raise CrackalError(f"{csv_path} line {line}: empty path; give each patch's path relative to {root}")
    path = root / value.strip()
    try:
        inside = path.resolve().is_relative_to(root.resolve())
    except (OSError, ValueError, RuntimeError):  # a NUL byte, a symlink loop
        raise CrackalError(f"{csv_path} line {line}: {value!r} is not a usable path; fix the path") from None
    if not inside:
        raise CrackalError(
            f"{csv_path} line {line}: {value!r} points outside the data folder {root}; paths in labels.csv must be "
            "relative to that folder and stay inside it: move or copy the patch into the folder and list it so"
        )
    return path


def _from_csv(root: Path) -> tuple[list[tuple[Path, int]], list[str]]:
    csv_path = root / "labels.csv"
    items: list[tuple[Path, int]] = []
    lines: dict[Path, int] = {}
    try:
        with csv_path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"path", "label"} <= {(n or "").strip() for n in reader.fieldnames}:
                raise CrackalError(f"{csv_path} needs the columns path,label")
            for line, row in enumerate(reader, start=2):
                row = {(k or "").strip(): v for k, v in row.items()}
                path = _patch_path(root, row.get("path"), line)
                try:
                    label = int((row.get("label") or "").strip())
                except ValueError:
                    raise CrackalError(f"{csv_path} line {line}: label {row.get('label')!r} is not an integer class index") from None
                key = path.resolve()
                if key in lines:
                    raise CrackalError(
                        f"{csv_path} lines {lines[key]} and {line} both list {row['path']!r}; list each patch once "
                        "(a patch listed twice can land in both the training and the test split)"
                    )
                lines[key] = line
                items.append((path, label))
    except UnicodeDecodeError:
        raise CrackalError(f"{csv_path} is not UTF-8 text; save it as UTF-8 CSV with the columns path,label") from None
    except csv.Error as exc:
        raise CrackalError(f"{csv_path} is not a readable CSV file ({exc}); save it as CSV with the columns path,label") from None
    labels = {label for _, label in items}
    names = read_class_names(root) or (PATCH_CLASSES if labels <= {0, 1} else [str(i) for i in range(max(labels) + 1)])
    if min(labels, default=0) < 0 or max(labels, default=0) >= len(names):
        raise CrackalError(f"{csv_path}: labels must be 0..{len(names) - 1} (one per class in classes.json)")
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
        folders = sorted((d for d in root.iterdir() if d.is_dir() and list_images(d)),
                         key=lambda d: (d.name.lower() not in NEGATIVE_NAMES, d.name))
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
            image = np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))
        out[i] = image
    return out
