"""Finding image/mask pairs in the folder layouts users bring, and checking them.

Supported layouts (``find_pairs(root)``):

* ``root/images/`` + ``root/masks/``: same-named masks (``a.jpg`` -> ``a.png``; the suffixes
  ``_mask``, ``_label``, ``_gt`` are also matched), 0/255 or 0/1 binary or class-index maps;
* CrackForest as downloaded: ``root/image/*.jpg`` + ``root/groundTruth/*.mat``;
* PaveSeg as downloaded: ``root/images/*.jpg`` + ``root/masks_gray_original/*_mask.png``
  (grey = 30 x class; its eight class names are known, see ``PAVESEG_CLASSES``);
* any two folders given explicitly: ``find_pairs(images_dir, masks_dir)``.

An optional ``root/classes.json`` names the classes, background first: a list of names, or of
``{"name": ..., "color": [r, g, b]}`` objects to choose the overlay colours.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np

from crackal.data.io import (
    MASK_SUFFIXES,
    PAVESEG_CLASSES,
    PAVESEG_MASK_FOLDER,
    exif_orientation,
    list_images,
    read_image,
    read_raw_mask,
    to_class_mask,
)
from crackal.errors import CrackalError

MASK_NAME_SUFFIXES = ("", "_mask", "_label", "_gt", "_seg")
BINARY_CLASSES = ("background", "crack")


@dataclass(frozen=True)
class Pair:
    """One labelled image: where its image and its mask live."""

    image: Path
    mask: Path

    @property
    def name(self) -> str:
        """The image's file stem."""
        return self.image.stem


def _mask_index(masks_dir: Path) -> dict[str, list[Path]]:
    """Mask files of a folder by stem (several when only the suffix differs: ``a.png``, ``a.tif``)."""
    if not masks_dir.is_dir():
        raise CrackalError(f"mask folder not found: {masks_dir}; check the path or pass --masks DIR")
    index: dict[str, list[Path]] = {}
    for path in sorted(masks_dir.iterdir()):
        if path.suffix.lower() in MASK_SUFFIXES and not path.name.startswith("."):
            index.setdefault(path.stem, []).append(path)
    return index


def _listed(names: list[str], limit: int = 5) -> str:
    return "; ".join(names[:limit]) + (f"; and {len(names) - limit} more" if len(names) > limit else "")


def check_unique_stems(images: list[Path], images_dir: Path) -> None:
    """Refuse two images with one name (``a.png`` and ``a.jpg``): splits and masks go by the name."""
    by_stem: dict[str, list[str]] = {}
    for image in images:
        by_stem.setdefault(image.stem, []).append(image.name)
    clashes = [" and ".join(names) for names in by_stem.values() if len(names) > 1]
    if clashes:
        raise CrackalError(
            f"{images_dir}: images share a name (the name without extension must be unique, since the split "
            f"and the masks go by it): {_listed(clashes)}; rename or remove the extra copies"
        )


def locate_folders(root: str | Path, masks: str | Path | None = None) -> tuple[Path, Path]:
    """The image and mask folders of a dataset root (see the module docstring)."""
    root = Path(root)
    if not root.exists():
        raise CrackalError(f"dataset folder not found: {root}; check the path")
    if masks is not None:
        return root, Path(masks)
    for images, labels in (("images", "masks"), ("image", "groundTruth"), ("images", "labels"), ("images", PAVESEG_MASK_FOLDER)):
        if (root / images).is_dir() and (root / labels).is_dir():
            return root / images, root / labels
    raise CrackalError(
        f"{root} has no images/ and masks/ folders (nor CrackForest's image/ and groundTruth/); "
        "lay the data out that way or pass --masks DIR with the image folder"
    )


def find_pairs(root: str | Path, masks: str | Path | None = None, allow_missing: bool = False) -> list[Pair]:
    """Match every image under a dataset root with its mask.

    Raises ``CrackalError`` for an empty folder, for two images with one name (``a.png`` and
    ``a.jpg``), for an image with more than one mask (``a.png`` and ``a_mask.png``), and for an
    image without a mask unless ``allow_missing`` (then unmatched images are left out). Masks
    without an image are left out with one ``UserWarning`` naming the first few.
    """
    images_dir, masks_dir = locate_folders(root, masks)
    images = list_images(images_dir)
    if not images:
        raise CrackalError(f"no images (.jpg/.png/.tif/.bmp) in {images_dir}; check the folder")
    check_unique_stems(images, images_dir)
    index = _mask_index(masks_dir)
    pairs, missing, ambiguous, used = [], [], [], set()
    for image in images:
        candidates = [m for s in MASK_NAME_SUFFIXES for m in index.get(image.stem + s, [])]
        used.update(candidates)
        if len(candidates) > 1:
            ambiguous.append(f"{image.name} -> {', '.join(m.name for m in candidates)}")
        elif not candidates:
            missing.append(image.name)
        else:
            pairs.append(Pair(image, candidates[0]))
    if ambiguous:
        raise CrackalError(
            f"{masks_dir} holds more than one mask for an image (which one is meant is ambiguous): "
            f"{_listed(ambiguous)}; keep one mask per image (masks match by name: a.png, a_mask.png, a_label.png, "
            "a_gt.png or a_seg.png for a.jpg)"
        )
    if missing and not allow_missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise CrackalError(
            f"no mask in {masks_dir} for {shown}; add same-named masks (e.g. {Path(missing[0]).stem}.png) "
            "or pass --skip-invalid to leave these images out"
        )
    if not pairs:
        raise CrackalError(f"no image in {images_dir} has a mask in {masks_dir}; check both folders")
    orphans = [m.name for masks_ in index.values() for m in masks_ if m not in used]
    if orphans:
        warnings.warn(
            f"{len(orphans)} mask(s) in {masks_dir} have no image in {images_dir} and are ignored: "
            + ", ".join(orphans[:5]) + (" ..." if len(orphans) > 5 else ""),
            UserWarning,
            stacklevel=2,
        )
    return pairs


def _class_entry(entry) -> dict | None:
    """``"crack"`` or ``{"name": "crack", "color": [r, g, b]}`` -> ``{"name", "color"}``; None if malformed."""
    if isinstance(entry, str):
        return {"name": entry, "color": None}
    if not (isinstance(entry, dict) and isinstance(entry.get("name"), str)):
        return None
    color = entry.get("color")
    if color is not None and not (isinstance(color, list) and len(color) == 3 and all(isinstance(c, int) and 0 <= c <= 255 for c in color)):
        return None
    return {"name": entry["name"], "color": color}


def _read_classes_json(root: str | Path) -> list[dict] | None:
    """Entries ``{"name", "color"}`` of ``root/classes.json``, or PaveSeg's known classes."""
    root = Path(root)
    path = root / "classes.json"
    if not path.is_file():
        if (root / PAVESEG_MASK_FOLDER).is_dir():
            return [{"name": name, "color": None} for name in PAVESEG_CLASSES]
        return None
    try:
        entries = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CrackalError(f"{path} is not valid JSON ({exc}); it must be a list of class names") from None
    parsed = [_class_entry(e) for e in entries] if isinstance(entries, list) else []
    if len(parsed) < 2 or None in parsed:
        raise CrackalError(
            f"{path} must list at least two classes, background first: names, or "
            '{"name": "crack", "color": [255, 0, 0]} objects'
        )
    return cast("list[dict]", parsed)  # no None: checked above


def read_class_names(root: str | Path) -> list[str] | None:
    """Class names from ``root/classes.json`` (or PaveSeg's), if the dataset names them."""
    entries = _read_classes_json(root)
    return [e["name"] for e in entries] if entries else None


def read_class_colors(root: str | Path) -> list[list[int]] | None:
    """Overlay colours from ``root/classes.json`` when every defect class has one."""
    entries = _read_classes_json(root)
    if not entries or any(e["color"] is None for e in entries[1:]):
        return None
    return [e["color"] or [0, 0, 0] for e in entries]


def load_pair(pair: Pair, num_classes: int, binarize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Image ``(H, W, 3) uint8`` and class mask ``(H, W) uint8`` of one pair, checked."""
    image = read_image(pair.image)
    mask = to_class_mask(read_raw_mask(pair.mask), num_classes, pair.mask, binarize)
    if mask.shape != image.shape[:2]:
        hint = ""
        if mask.shape == image.shape[1::-1] and exif_orientation(pair.image) in (5, 6, 7, 8):
            hint = (
                f"; {pair.image.name} carries an EXIF orientation tag, so it is read turned upright as viewers show "
                "it, and the mask seems drawn on the unturned pixels: turn the mask the same way, or remove the "
                "image's tag (e.g. exiftool -Orientation= FILE)"
            )
        raise CrackalError(
            f"{pair.mask}: mask is {mask.shape[1]}x{mask.shape[0]} but its image {pair.image.name} is "
            f"{image.shape[1]}x{image.shape[0]} (width x height); masks must match their images pixel for pixel"
            + hint
        )
    return image, mask


def validate_pairs(
    pairs: list[Pair], num_classes: int, binarize: bool = False, skip_invalid: bool = False
) -> tuple[list[Pair], list[str]]:
    """Read every pair once and check it; returns the good pairs and one message per bad one.

    Without ``skip_invalid`` any bad pair raises ``CrackalError`` listing every problem found.
    """
    good, problems = [], []
    for pair in pairs:
        try:
            load_pair(pair, num_classes, binarize)
        except CrackalError as exc:
            problems.append(str(exc))
        else:
            good.append(pair)
    if problems and not skip_invalid:
        head = problems[0] if len(problems) == 1 else f"{len(problems)} bad files:\n  " + "\n  ".join(problems[:10])
        raise CrackalError(head + ("" if len(problems) == 1 else "\nfix them or pass --skip-invalid to leave them out"))
    if not good:
        raise CrackalError("no valid image/mask pair left after validation; fix the files listed above")
    return good, problems


def resolve_class_names(data: str | Path, classes: str | list[str] | None) -> list[str]:
    """Explicit ``classes`` (list or comma-separated) > ``data/classes.json`` > background, crack."""
    if isinstance(classes, str):
        classes = [c.strip() for c in classes.split(",") if c.strip()]
    if classes:
        if len(classes) < 2:
            raise CrackalError("classes needs at least two names, background first (e.g. background,crack)")
        return list(classes)
    return read_class_names(data) or list(BINARY_CLASSES)


def open_dataset(
    data: str | Path,
    masks: str | Path | None = None,
    classes: str | list[str] | None = None,
    skip_invalid: bool = False,
    binarize: bool = False,
) -> tuple[list[Pair], list[str], list[str]]:
    """Find and validate every pair; returns (pairs, class names, problems skipped)."""
    names = resolve_class_names(data, classes)
    pairs = find_pairs(data, masks, allow_missing=skip_invalid)
    pairs, problems = validate_pairs(pairs, len(names), binarize, skip_invalid)
    return pairs, names, problems
