"""Reading and writing images and masks, with errors that name the file.

Every reader either returns the pixels as a viewer shows them or raises one ``CrackalError``
naming the file and what to do; a corrupt, truncated, empty, unknown or oversized file never
gives another exception, a silently wrong array or a hang. Images larger than
``max_pixels()`` (Pillow's decompression-bomb limit, about 89 million pixels, or the
environment variable ``CRACKAL_MAX_PIXELS``) are refused before anything is decoded.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
from PIL import Image, UnidentifiedImageError

from crackal.errors import CrackalError

if TYPE_CHECKING:
    from PIL import ImageFile, TiffImagePlugin

IGNORE_INDEX = 255  # mask value of pixels that count neither in the loss nor in the metrics
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
MASK_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".mat", ".jpg", ".jpeg")
MAX_PIXELS_ENV = "CRACKAL_MAX_PIXELS"
STRETCH_PERCENTILES = (0.1, 99.9)  # how images of more than 8 bits per sample are scaled to uint8
_STRETCH_SAMPLE = 1_000_000  # percentiles are taken on at most about this many values

# CrackForest's .mat label map: 1 background, 2 crack, 3 non-crack island, 4 extra crack strokes.
CRACKFOREST_CRACK_LABELS = (2, 4)
# PaveSeg as downloaded: masks_gray_original/<stem>_mask.png, grey value = 30 x class index.
PAVESEG_MASK_FOLDER, PAVESEG_GREY_STEP = "masks_gray_original", 30
PAVESEG_CLASSES = (
    "background", "crack", "pothole", "sealed_crack", "patch", "alligator_crack", "utility_cover", "expansion_joint",
)

_TIFF_SUFFIXES = (".tif", ".tiff")
_NUMERIC_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I;16S", "I", "F")  # more than 8 bits: scaled by read_image
_MASK_MODES = ("1", "L", "P", *_NUMERIC_MODES)  # single-channel label images read as stored
_OPEN_LOCK = threading.Lock()  # Image.open runs under our pixel limit, set and restored around it
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")
_SKIP_HINT = "re-export it, or remove it (or pass --skip-invalid to leave such files out)"


def _new_lock_after_fork() -> None:  # a forked worker must not inherit a lock another thread held
    global _OPEN_LOCK
    _OPEN_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_after_fork)


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CrackalError(f"folder not found: {folder}; check the path")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))


def max_pixels() -> int | None:
    """The largest image (width x height) the readers decode.

    ``CRACKAL_MAX_PIXELS`` when set (e.g. ``CRACKAL_MAX_PIXELS=400000000`` for a trusted large
    orthophoto), else Pillow's ``Image.MAX_IMAGE_PIXELS`` (89,478,485 unless changed; ``None``
    only if a program switched Pillow's protection off).
    """
    value = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not value:
        return Image.MAX_IMAGE_PIXELS
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit <= 0:
        raise CrackalError(
            f"{MAX_PIXELS_ENV}={value!r} is not a positive whole number of pixels; set it like "
            f"{MAX_PIXELS_ENV}=200000000, or unset it to keep the default limit"
        )
    return limit


def _too_big(path: Path, pixels: int, limit: int, size: tuple[int, int] | None = None) -> CrackalError:
    dims = f"{size[0]}x{size[1]} = " if size else ""
    return CrackalError(
        f"{path}: image of {dims}{pixels:,} pixels, more than the {limit:,} crackal decodes at once (a guard "
        "against decompression bombs and running out of memory); cut it into smaller tiles beforehand, or, if "
        f"the file is trusted and memory allows, raise the limit with the environment variable {MAX_PIXELS_ENV}"
    )


def _check_pixels(path: Path, size: tuple[int, int], limit: int | None) -> None:
    """``size`` is (width, height)."""
    pixels = max(1, int(size[0])) * max(1, int(size[1]))
    if limit is not None and pixels > limit:
        raise _too_big(path, pixels, limit, size)


def _cannot_read(path: Path, exc: BaseException) -> CrackalError:
    if isinstance(exc, CrackalError):
        return exc
    if isinstance(exc, PermissionError):
        return CrackalError(f"cannot open {path}: permission denied; check the file's permissions")
    if isinstance(exc, MemoryError):
        return CrackalError(f"not enough memory to decode {path}; cut it into smaller tiles beforehand")
    try:
        empty = path.stat().st_size == 0
    except OSError:
        empty = False
    if empty:
        return CrackalError(f"{path} is an empty file (0 bytes); {_SKIP_HINT}")
    if isinstance(exc, UnidentifiedImageError):
        return CrackalError(f"{path} is not an image in a format crackal reads (PNG, JPEG, TIFF, BMP); {_SKIP_HINT}")
    detail = str(exc) or type(exc).__name__
    return CrackalError(f"cannot read {path}: {detail}. The file is corrupt or truncated: {_SKIP_HINT}")


def _pil_open(path: Path, limit: int | None) -> Image.Image:
    """``Image.open`` (header only) with Pillow's decompression-bomb check at ``limit``, where
    both its warning and its error refuse the file; Pillow's other warnings about a header
    (e.g. corrupt EXIF) are dropped: the file is read, or refused on decoding."""
    with _OPEN_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = limit
        try:
            return Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            size = _header_size(path)
            found = _BOMB_PIXELS.search(str(exc))
            pixels = size[0] * size[1] if size else int(found.group(1)) if found else 0
            raise _too_big(path, pixels, limit or 0, size) from None
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from the header of a file Pillow refused as too big (as ``Image.open``
    does, without its size check: nothing is decoded); None if that fails."""
    try:
        Image.init()
        with path.open("rb") as fp:
            prefix = fp.read(16)
            for fmt in Image.ID:
                factory, accept = Image.OPEN[fmt]
                if accept is not None and not accept(prefix):
                    continue
                fp.seek(0)
                try:
                    return cast("tuple[int, int]", tuple(factory(fp, str(path)).size))
                except Exception:  # noqa: BLE001 - not this format
                    continue
    except Exception:  # noqa: BLE001 - the size is only for the message
        return None
    return None


def _check_file(path: Path) -> None:
    if not path.exists():
        raise CrackalError(f"file not found: {path}")
    if not path.is_file():
        raise CrackalError(f"{path} is not a regular file (a folder, device or pipe); remove it from the data folder")


def _orientation(img: Image.Image) -> int:
    """The EXIF orientation tag (1..8; 1 = as stored), without decoding the pixels."""
    try:
        if img.format == "PNG":  # Pillow's getexif() would decode a PNG whose eXIf chunk is absent
            raw = img.info.get("exif")
            if not raw:
                return 1
            exif = Image.Exif()
            exif.load(raw)
        else:
            exif = img.getexif()
        value = int(exif.get(0x0112, 1))
    except Exception:  # noqa: BLE001 - a malformed EXIF block only loses the orientation
        return 1
    return value if 1 <= value <= 8 else 1


def _orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Pixels in displayed orientation: what ``ImageOps.exif_transpose`` does, on an array."""
    if orientation in (5, 6, 7, 8):
        array = {5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
                 8: lambda a: np.rot90(a, 1)}[orientation](array)
    elif orientation == 2:
        array = array[:, ::-1]
    elif orientation == 3:
        array = array[::-1, ::-1]
    elif orientation == 4:
        array = array[::-1]
    return np.ascontiguousarray(array)


def _tiff_array(path: Path, limit: int | None) -> tuple[np.ndarray, int]:
    """Pixels and orientation of a TIFF Pillow cannot decode fully (16-bit colour, float16,
    unusual compression), size-checked before reading."""
    import logging

    import tifffile

    tiff_log = logging.getLogger("tifffile")  # it logs each defect of a bad file; we raise one CrackalError
    if not tiff_log.handlers:
        tiff_log.addHandler(logging.NullHandler())
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        _check_pixels(path, (page.imagewidth, page.imagelength), limit)
        orientation = page.tags.get(274)
        array = page.asarray()
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[0] in (3, 4) and array.shape[2] not in (3, 4):  # planar RGB
        array = np.moveaxis(array, 0, 2)
    value = int(orientation.value) if orientation is not None else 1
    return array, value if 1 <= value <= 8 else 1


def _png16_colour(path: Path) -> np.ndarray:
    """A 16-bit colour PNG as ``(H, W, 3|4) uint16`` (Pillow keeps only 8 bits of each)."""
    import cv2

    array = cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None or array.ndim != 3 or array.shape[2] not in (2, 3, 4):
        raise OSError("cannot decode this 16-bit colour PNG")
    if array.shape[2] == 2:  # grey + alpha
        return array
    return array[:, :, [2, 1, 0, 3][: array.shape[2]]]  # BGR(A) -> RGB(A)


def _high_bit_colour(img: Image.Image) -> bool:
    """Whether Pillow would silently drop the low 8 bits of each sample (16-bit RGB PNG/TIFF)."""
    if img.mode not in ("RGB", "RGBA", "RGBX", "LA"):
        return False
    try:
        if img.format == "PNG":
            return any(";16" in str(tile.args) for tile in cast("ImageFile.ImageFile", img).tile)
        if img.format == "TIFF":
            bits = cast("TiffImagePlugin.TiffImageFile", img).tag_v2.get(258, (8,))
            return max(bits if isinstance(bits, tuple) else (bits,)) > 8
    except Exception:  # noqa: BLE001 - fall back to Pillow's own decoding
        return False
    return False


def _decode(path: Path, kind: str) -> np.ndarray:
    """Decode a whole file (a truncated file fails here, not later in training) and return its
    pixels in displayed (EXIF) orientation. ``kind`` "image": RGB ``uint8`` for 8-bit files,
    the stored numbers otherwise; "mask": the stored values (palette indices, not colours)."""
    _check_file(path)
    limit = max_pixels()
    is_tiff = path.suffix.lower() in _TIFF_SUFFIXES
    try:
        img = _pil_open(path, limit)
    except CrackalError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds for a bad file
        if is_tiff or _is_tiff_bytes(path):
            return _tiff_fallback(path, limit, exc)
        raise _cannot_read(path, exc) from None
    try:
        with img:
            _check_pixels(path, img.size, limit)
            if _high_bit_colour(img):
                if img.format == "PNG":
                    img.load()  # Pillow checks the whole file first (OpenCV would print libpng errors)
                orientation = _orientation(img)
                array = _tiff_array(path, limit)[0] if img.format == "TIFF" else _png16_colour(path)
                return _orient(array, orientation)
            img.load()
            orientation = _orientation(img)
            if kind == "image":
                array = np.array(img if img.mode in (*_NUMERIC_MODES, "RGB", "L") else img.convert("RGB"))
            elif img.mode in _MASK_MODES:
                array = np.array(img)
            elif img.mode in ("LA", "La", "PA"):
                array = np.array(img.getchannel(0))  # the label; the alpha channel is ignored
            elif img.mode in ("RGB", "RGBA", "RGBX", "RGBa"):
                array = np.array(img)
            else:
                raise CrackalError(
                    f"{path}: mask stored in colour mode {img.mode}; save masks as single-channel class-index "
                    "or 0/255 PNGs"
                )
            return _orient(array, orientation)
    except CrackalError:
        raise
    except Exception as exc:  # noqa: BLE001 - decoding errors of every kind mean a bad file
        if is_tiff:
            return _tiff_fallback(path, limit, exc)
        raise _cannot_read(path, exc) from None


def _is_tiff_bytes(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
    except OSError:
        return False


def _tiff_fallback(path: Path, limit: int | None, pil_error: BaseException) -> np.ndarray:
    try:
        array, orientation = _tiff_array(path, limit)
    except CrackalError:
        raise
    except Exception:  # noqa: BLE001 - report Pillow's error, the more telling one
        raise _cannot_read(path, pil_error) from None
    return _orient(array, orientation)


def image_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` of an image as displayed (EXIF orientation applied), from its header
    only; the same checks (existence, format, pixel limit) as ``read_image``."""
    path = Path(path)
    _check_file(path)
    limit = max_pixels()
    try:
        img = _pil_open(path, limit)
    except CrackalError:
        raise
    except Exception as exc:  # noqa: BLE001
        if path.suffix.lower() in _TIFF_SUFFIXES or _is_tiff_bytes(path):
            array = _tiff_fallback(path, limit, exc)
            return int(array.shape[0]), int(array.shape[1])
        raise _cannot_read(path, exc) from None
    with img:
        _check_pixels(path, img.size, limit)
        width, height = img.size
        return (width, height) if _orientation(img) in (5, 6, 7, 8) else (height, width)


def exif_orientation(path: str | Path) -> int:
    """The EXIF orientation tag of an image file (1 = as stored; 1 too if unreadable)."""
    try:
        with _pil_open(Path(path), max_pixels()) as img:
            return _orientation(img)
    except Exception:  # noqa: BLE001 - only a hint for error messages
        return 1


def stretch_to_uint8(array: np.ndarray) -> np.ndarray:
    """Scale an image of more than 8 bits per sample (or of floats) to ``uint8``.

    Linear, one scale for all channels: the image's own 0.1th percentile becomes 0 and its
    99.9th percentile 255 (the 0.1 % darkest and brightest values, hot or dead pixels, are
    clipped). If those percentiles are equal the full min..max is used; a constant image
    becomes 0. NaN and infinite values become 0 and do not count. Above a million values the
    percentiles come from a regular subsample (every k-th value).

    >>> stretch_to_uint8(np.array([[0, 1000, 2000, 4095]], np.uint16)).tolist()
    [[0, 62, 125, 255]]
    """
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"unsupported sample type {array.dtype}")
    work: type[np.floating] = np.float32 if array.dtype.itemsize <= 2 or array.dtype == np.float32 else np.float64
    values = array.astype(work) if array.dtype.kind == "f" and array.dtype.itemsize < 4 else array
    finite = np.isfinite(values) if values.dtype.kind == "f" else None
    sample = values[finite] if finite is not None and not finite.all() else values.reshape(-1)
    if sample.size > _STRETCH_SAMPLE:  # the percentiles of a regular subsample: as good, much faster
        sample = sample[:: sample.size // _STRETCH_SAMPLE]
    if sample.size == 0:
        return np.zeros(array.shape, np.uint8)
    lo, hi = (float(v) for v in np.percentile(sample, STRETCH_PERCENTILES))
    if not hi > lo:
        lo, hi = float(sample.min()), float(sample.max())
    if not hi > lo:
        return np.zeros(array.shape, np.uint8)
    if array.dtype.kind in "ui" and array.dtype.itemsize <= 2:  # a lookup table: no float copy of the image
        info = np.iinfo(array.dtype)
        levels = np.arange(info.min, info.max + 1, dtype=np.float64)
        table = np.clip(np.rint((levels - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)
        return table[array.astype(np.int64) - info.min if info.min else array]
    out = (values.astype(work) - work(lo)) * work(255.0 / (hi - lo))
    if finite is not None:
        out[~finite] = 0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as ``uint8`` RGB ``(H, W, 3)``, as an image viewer displays it.

    * EXIF orientation is applied (``ImageOps.exif_transpose``): a phone photo tagged
      "rotate 90" comes back upright, matching a mask drawn on the displayed image.
    * Grey (and 1-bit) images are replicated to 3 channels; palette, grey+alpha, RGBA and
      CMYK images are converted to RGB (alpha is dropped, not blended).
    * An image of more than 8 bits per sample (16-bit PNG/TIFF, 32-bit integer, float TIFF)
      is scaled linearly by its own range: its 0.1th percentile becomes 0 and its 99.9th
      percentile 255 (see ``stretch_to_uint8``). A 16-bit camera frame usually holds 10-14
      bits, so dividing by 65535 would make it nearly black; a full-range 16-bit image comes
      out as it would divided by 257, give or take its extreme 0.1 %.
    * The file is decoded fully here: a corrupt, truncated, empty or unknown file, or one of
      more than ``max_pixels()`` pixels, raises ``CrackalError`` naming it.
    """
    path = Path(path)
    array = _decode(path, "image")
    try:
        array = stretch_to_uint8(array)
    except ValueError:
        raise CrackalError(f"{path}: unsupported sample type {array.dtype}; save it as 8- or 16-bit PNG or TIFF") from None
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 3 and array.shape[2] == 2:  # grey + alpha decoded without Pillow
        array = array[:, :, 0]
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4) or 0 in array.shape:
        raise CrackalError(f"{path}: expected a grey or RGB image, got an array of shape {array.shape}; save it as PNG or JPEG")
    return np.ascontiguousarray(array[:, :, :3])


def read_raw_mask(path: str | Path) -> np.ndarray:
    """Read a label image as stored (``(H, W)`` integers), before any value checks.

    Values are never scaled: a 16-bit PNG gives its 16-bit values, a palette (``P``) PNG its
    palette indices (how labelling tools store class masks), a 1-bit PNG 0/1. The alpha of a
    grey+alpha or RGBA mask is ignored; an RGB mask is accepted only when its three channels
    are equal. EXIF orientation is applied as for ``read_image`` (both are read as displayed).
    CrackForest ``.mat`` files give the crack label map reduced to 0/1 (crack = labels 2 and 4);
    PaveSeg's grey masks (in ``masks_gray_original/``) give ``grey / 30``.
    """
    path = Path(path)
    if path.suffix.lower() == ".mat":
        return read_crackforest_mat(path)
    array = _decode(path, "mask")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 3 and array.shape[2] in (2, 3, 4):
        if array.shape[2] == 2:  # grey + alpha (from tifffile)
            array = array[:, :, 0]
        else:
            channels = array[:, :, :3]
            if not (np.array_equal(channels[:, :, 0], channels[:, :, 1]) and np.array_equal(channels[:, :, 0], channels[:, :, 2])):
                raise CrackalError(
                    f"{path}: colour mask (channels differ); save masks as single-channel class-index "
                    "or 0/255 PNGs"
                )
            array = channels[:, :, 0]
    if array.ndim != 2 or 0 in array.shape:
        raise CrackalError(f"{path}: expected a single-channel mask, got an array of shape {array.shape}")
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise CrackalError(f"{path}: unsupported sample type {array.dtype}; save masks as 8- or 16-bit PNGs")
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

    Binary (``num_classes == 2``): 0/255 or 0/1 (a 16-bit mask may also be 0/65535); with
    ``binarize`` any value above 127 (or above 0 for 0/1-style masks) is crack, which tolerates
    JPEG artefacts. Multi-class: whole values ``0..num_classes-1``, and 255 marks pixels to
    ignore; anything else (negative, fractional, NaN, too large) is refused, never wrapped.
    """
    values = np.unique(raw)
    if num_classes == 2:
        if binarize:
            return (raw > (127 if values.max(initial=0) > 1 else 0)).astype(np.uint8)
        if set(values.tolist()) <= {0, 1}:
            return raw.astype(np.uint8)
        if set(values.tolist()) <= {0, 255}:
            return (raw == 255).astype(np.uint8)
        if raw.dtype.kind == "u" and raw.dtype.itemsize > 1 and set(values.tolist()) <= {0, np.iinfo(raw.dtype).max}:
            return (raw != 0).astype(np.uint8)  # a full-range 16-bit binary mask
        shown = ", ".join(str(v) for v in values[:8]) + (" ..." if len(values) > 8 else "")
        raise CrackalError(
            f"{path}: unexpected mask values [{shown}]; binary masks must be 0/255 or 0/1. "
            "JPEG masks gain such values from compression: save masks as PNG, or pass --binarize "
            "to threshold at 128; for several classes pass --classes"
        )
    if values.dtype.kind == "f":
        odd = values[~np.isfinite(values) | (values != np.round(values)) | (values < 0)]
    else:
        odd = values[values < 0]
    if len(odd):
        raise CrackalError(
            f"{path}: mask values {odd[:8].tolist()} are not class indices (whole numbers 0..{num_classes - 1}, "
            "255 = ignore); save the mask as a class-index PNG"
        )
    bad = values[(values >= num_classes) & (values != 255)]
    if len(bad):
        raise CrackalError(
            f"{path}: mask values {bad[:8].tolist()} exceed the {num_classes} classes (0..{num_classes - 1}, "
            "255 = ignore); check --classes or the mask"
        )
    return raw.astype(np.uint8)


PNG_LEVEL = 1  # zlib level of write_png: an overlay of 320 x 480 encodes in 29 ms, 102 ms at PIL's default 6


def write_png(path: str | Path, array: np.ndarray) -> None:
    """Write a ``uint8`` grey or RGB array as PNG (zlib level ``PNG_LEVEL``), creating the parent folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array)).save(path, format="PNG", compress_level=PNG_LEVEL)


def mask_png(class_mask: np.ndarray, num_classes: int) -> np.ndarray:
    """What a mask file holds: 0/255 for binary tasks, class indices otherwise."""
    return class_mask * 255 if num_classes == 2 else class_mask
