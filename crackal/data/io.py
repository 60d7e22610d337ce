"""Reading and writing images and masks, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from crackal.errors import CrackalError

IGNORE_INDEX = 255  # mask value of pixels that count neither in the loss nor in the metrics
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
MASK_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".mat", ".jpg", ".jpeg")

# CrackForest's .mat label map: 1 background, 2 crack, 3 non-crack island, 4 extra crack strokes.
CRACKFOREST_CRACK_LABELS = (2, 4)
# PaveSeg as downloaded: masks_gray_original/<stem>_mask.png, grey value = 30 x class index.
PAVESEG_MASK_FOLDER, PAVESEG_GREY_STEP = "masks_gray_original", 30
PAVESEG_CLASSES = (
    "background", "crack", "pothole", "sealed_crack", "patch", "alligator_crack", "utility_cover", "expansion_joint",
)


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CrackalError(f"folder not found: {folder}; check the path")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def _open(path: Path) -> tuple[np.ndarray, str]:
    """Decode a file fully (a truncated file fails here, not later in training)."""
    if not path.is_file():
        raise CrackalError(f"file not found: {path}")
    try:
        with Image.open(path) as img:
            img.load()
            return np.array(img), img.mode
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            try:
                array = tifffile.imread(path)
                return array, "tiff"
            except Exception:  # noqa: BLE001 - report the original PIL error below
                pass
        raise CrackalError(
            f"cannot read {path}: {exc}. The file is corrupt or truncated: re-export it, "
            "or remove it (or pass --skip-invalid to leave such files out)"
        ) from None


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    array = array.astype(np.float64)
    hi = array.max() if array.size else 1.0
    scale = 255.0 / hi if hi > 255 else 1.0
    return np.clip(array * scale, 0, 255).astype(np.uint8)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as ``uint8`` RGB ``(H, W, 3)``; grey images are replicated to 3 channels."""
    path = Path(path)
    array, mode = _open(path)
    if mode not in ("RGB", "L", "tiff"):
        with Image.open(path) as img:
            array = np.array(img.convert("RGB"))
    array = _to_uint8(array)
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise CrackalError(f"{path}: expected a grey or RGB image, got an array of shape {array.shape}")
    return np.ascontiguousarray(array[:, :, :3])


def read_raw_mask(path: str | Path) -> np.ndarray:
    """Read a label image as stored (``(H, W)`` integers), before any value checks.

    CrackForest ``.mat`` files give the crack label map reduced to 0/1 (crack = labels 2 and 4);
    PaveSeg's grey masks (in ``masks_gray_original/``) give ``grey / 30``. An RGB mask is
    accepted only when its three channels are equal.
    """
    path = Path(path)
    if path.suffix.lower() == ".mat":
        return read_crackforest_mat(path)
    array, _ = _open(path)
    if array.ndim == 3:
        channels = array[:, :, :3]
        if not (np.array_equal(channels[:, :, 0], channels[:, :, 1]) and np.array_equal(channels[:, :, 0], channels[:, :, 2])):
            raise CrackalError(
                f"{path}: colour mask (channels differ); save masks as single-channel class-index "
                "or 0/255 PNGs"
            )
        array = channels[:, :, 0]
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if path.parent.name == PAVESEG_MASK_FOLDER:
        return paveseg_classes_from_grey(array, path)
    return array


def paveseg_classes_from_grey(grey: np.ndarray, path: str | Path) -> np.ndarray:
    """Class indices of a PaveSeg grey mask (grey = 30 x class)."""
    if (grey % PAVESEG_GREY_STEP).any():
        odd = np.unique(grey[grey % PAVESEG_GREY_STEP != 0])[:8].tolist()
        raise CrackalError(f"{path}: PaveSeg grey masks hold multiples of 30 (30 x class), found {odd}")
    return (grey // PAVESEG_GREY_STEP).astype(np.uint8)


def read_crackforest_mat(path: str | Path) -> np.ndarray:
    """Crack mask (0/1 ``uint8``) from a CrackForest ground-truth ``.mat`` file."""
    from scipy.io import loadmat

    path = Path(path)
    try:
        segmentation = loadmat(path)["groundTruth"][0, 0]["Segmentation"]
    except Exception as exc:  # noqa: BLE001 - scipy raises many kinds for a bad file
        raise CrackalError(
            f"cannot read CrackForest ground truth {path} ({exc}); expected a .mat file with "
            "groundTruth[0,0]['Segmentation']"
        ) from None
    return np.isin(segmentation, CRACKFOREST_CRACK_LABELS).astype(np.uint8)


def to_class_mask(raw: np.ndarray, num_classes: int, path: str | Path, binarize: bool = False) -> np.ndarray:
    """Turn a stored label image into class indices ``(H, W) uint8``.

    Binary (``num_classes == 2``): 0/255 or 0/1; with ``binarize`` any value above 127 (or
    above 0 for 0/1-style masks) is crack, which tolerates JPEG artefacts. Multi-class: values
    ``0..num_classes-1``, and 255 marks pixels to ignore.
    """
    values = np.unique(raw)
    if num_classes == 2:
        if binarize:
            return (raw > (127 if values.max(initial=0) > 1 else 0)).astype(np.uint8)
        if set(values.tolist()) <= {0, 1}:
            return raw.astype(np.uint8)
        if set(values.tolist()) <= {0, 255}:
            return (raw == 255).astype(np.uint8)
        shown = ", ".join(str(v) for v in values[:8]) + (" ..." if len(values) > 8 else "")
        raise CrackalError(
            f"{path}: unexpected mask values [{shown}]; binary masks must be 0/255 or 0/1. "
            "JPEG masks gain such values from compression: save masks as PNG, or pass --binarize "
            "to threshold at 128; for several classes pass --classes"
        )
    bad = values[(values >= num_classes) & (values != 255)]
    if len(bad):
        raise CrackalError(
            f"{path}: mask values {bad[:8].tolist()} exceed the {num_classes} classes (0..{num_classes - 1}, "
            "255 = ignore); check --classes or the mask"
        )
    return raw.astype(np.uint8)


def write_png(path: str | Path, array: np.ndarray) -> None:
    """Write a ``uint8`` grey or RGB array as PNG, creating the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array)).save(path)


def mask_png(class_mask: np.ndarray, num_classes: int) -> np.ndarray:
    """What a mask file holds: 0/255 for binary tasks, class indices otherwise."""
    return class_mask * 255 if num_classes == 2 else class_mask
