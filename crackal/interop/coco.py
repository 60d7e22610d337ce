"""COCO instances files: class masks and boxes out, class masks in.

Writing: each connected defect (8-connected) of each class of a class mask is one annotation,
its ``segmentation`` a compressed RLE (pycocotools' string ``counts``), with ``bbox``
``[x, y, width, height]`` and ``area`` in pixels; boxes (detection labels) are annotations with
a ``bbox`` and an empty ``segmentation``. Category ids are class indices: 1 is the first defect
class; background (0) is no category and ignored pixels (255) are no instance.

Reading: polygons (lists of ``x, y`` in pixels, pixel edges at whole numbers), uncompressed RLE
(``counts`` a list) and compressed RLE (``counts`` a string) are painted into one ``uint8`` class
mask per image (0 = background), in the order of the file's annotations: where two overlap, the
later one wins. Categories are matched to class names by name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_utils
from scipy import ndimage

from crackal.data.boxes import ImageBoxes
from crackal.data.io import IGNORE_INDEX, image_size, list_images, mask_png, write_png
from crackal.data.layout import check_unique_stems, locate_folders
from crackal.errors import CrackalError
from crackal.interop import read_json

EIGHT_CONNECTED = np.ones((3, 3), int)
COCO_FILE_NAMES = ("annotations.json", "_annotations.coco.json")  # crackal's / Roboflow's name in a dataset root


# writing ---------------------------------------------------------------------------------


def categories(class_names: list[str]) -> list[dict]:
    """COCO categories of the defect classes: id = class index, background left out.

    >>> categories(["background", "crack", "pothole"])
    [{'id': 1, 'name': 'crack', 'supercategory': 'defect'}, {'id': 2, 'name': 'pothole', 'supercategory': 'defect'}]
    """
    return [{"id": index, "name": name, "supercategory": "defect"} for index, name in enumerate(class_names) if index]


def _rle_counts(flat_indices: np.ndarray, pixels: int) -> list[int]:
    """Uncompressed RLE counts (zeros first) of the set pixels at sorted column-major indices."""
    breaks = np.flatnonzero(np.diff(flat_indices) != 1)
    starts = flat_indices[np.concatenate([[0], breaks + 1])]
    ends = flat_indices[np.concatenate([breaks, [flat_indices.size - 1]])] + 1
    counts = np.empty(2 * starts.size, np.int64)
    counts[0::2] = starts - np.concatenate([[0], ends[:-1]])
    counts[1::2] = ends - starts
    tail = pixels - int(ends[-1])
    return counts.tolist() + ([tail] if tail else [])


def mask_annotations(mask: np.ndarray, num_classes: int) -> list[dict]:
    """One annotation (``category_id``, ``segmentation`` as compressed RLE, ``bbox``, ``area``,
    ``iscrowd``) per 8-connected component of each defect class of a class mask; no ids yet.

    >>> mask = np.zeros((4, 5), np.uint8); mask[1:3, 2:4] = 1; mask[0, 0] = 2
    >>> [(a["category_id"], a["bbox"], a["area"], a["segmentation"]["counts"]) for a in mask_annotations(mask, 3)]
    [(1, [2, 1, 2, 2], 4, '92203'), (2, [0, 0, 1, 1], 1, '01c0')]
    """
    mask = np.asarray(mask)
    height, width = mask.shape
    odd = np.setdiff1d(np.unique(mask), [*range(num_classes), IGNORE_INDEX])
    if odd.size:
        raise CrackalError(f"mask values {odd[:8].tolist()} are not class indices 0..{num_classes - 1} (255 = ignore); check the classes")
    annotations = []
    for cls in range(1, num_classes):
        components, count = ndimage.label(mask == cls, EIGHT_CONNECTED)
        if not count:
            continue
        flat = components.T.ravel()  # column-major, as COCO's RLE runs
        where = np.flatnonzero(flat)
        order = np.argsort(flat[where], kind="stable")  # grouped by component, each still in pixel order
        sizes = np.bincount(flat[where], minlength=count + 1)[1:]
        groups = np.split(where[order], np.cumsum(sizes)[:-1])
        for (rows, cols), indices, size in zip(ndimage.find_objects(components), groups, sizes):
            rle = mask_utils.frPyObjects({"counts": _rle_counts(indices, height * width), "size": [height, width]}, height, width)
            annotations.append({"category_id": cls, "segmentation": {"size": [height, width], "counts": rle["counts"].decode("ascii")},
                                "bbox": [cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start],
                                "area": int(size), "iscrowd": 0})
    return annotations


def box_annotations(boxes: ImageBoxes) -> list[dict]:
    """One annotation per box (``bbox`` ``[x, y, width, height]``, ``area``, empty ``segmentation``,
    which COCO tools read as a box without a mask); no ids yet.

    >>> box_annotations(ImageBoxes([[5, 3, 6, 4]], [1]))
    [{'category_id': 1, 'segmentation': [], 'bbox': [5.0, 3.0, 1.0, 1.0], 'area': 1.0, 'iscrowd': 0}]
    """
    annotations = []
    for (x0, y0, x1, y1), label in zip(boxes.boxes.astype(np.float64).tolist(), boxes.labels.tolist()):
        w, h = x1 - x0, y1 - y0
        annotations.append({"category_id": int(label), "segmentation": [], "bbox": [x0, y0, w, h], "area": w * h, "iscrowd": 0})
    return annotations


def coco_dataset(labels: Iterable[tuple[str, tuple[int, int], np.ndarray | ImageBoxes]], class_names: list[str],
                 description: str = "") -> dict:
    """A COCO instances document of ``(file name, (height, width), class mask or boxes)`` entries
    (a generator keeps one mask in memory at a time); images and annotations are numbered from 1
    in the given order."""
    images: list[dict] = []
    annotations: list[dict] = []
    for image_id, (file_name, (height, width), label) in enumerate(labels, start=1):
        images.append({"id": image_id, "file_name": file_name, "height": int(height), "width": int(width)})
        if isinstance(label, ImageBoxes):
            found = box_annotations(label)
        else:
            if label.shape != (height, width):
                raise CrackalError(f"{file_name}: mask is {label.shape[1]}x{label.shape[0]} but the image is {width}x{height}")
            found = mask_annotations(label, len(class_names))
        annotations += [{"id": len(annotations) + number, "image_id": image_id, **a} for number, a in enumerate(found, start=1)]
    info = {"description": description or "exported by crackal", "version": "1.0",
            "date_created": datetime.now(UTC).isoformat(timespec="seconds")}
    return {"info": info, "licenses": [], "images": images, "annotations": annotations, "categories": categories(class_names)}


def write_coco_json(path: str | Path, data: dict) -> Path:
    """Write a COCO document as JSON (a temporary file, then renamed: never half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)
    return path


# reading ---------------------------------------------------------------------------------


@dataclass
class CocoImage:
    """One entry of a COCO file's ``images`` (``height``/``width`` None when the file omits them)."""

    id: int
    file_name: str
    height: int | None
    width: int | None


@dataclass
class CocoFile:
    """A COCO instances file, its structure checked: images by id, category names by id, annotations."""

    path: Path
    images: dict[int, CocoImage]
    categories: dict[int, str]
    annotations: list[dict]

    def class_names(self) -> list[str]:
        """Background, then the category names in category-id order, each once (a category
        called ``background`` is class 0).

        >>> CocoFile(Path("c.json"), {}, {3: "crack", 1: "patch", 4: "crack"}, []).class_names()
        ['background', 'patch', 'crack']
        """
        return ["background"] + list(dict.fromkeys(name for _, name in sorted(self.categories.items()) if name != "background"))


def _not_coco(path: Path, problem: str) -> CrackalError:
    return CrackalError(f"{path} is not a COCO instances file ({problem}); expected a JSON object with 'images' "
                        "(id, file_name, width, height), 'annotations' and 'categories' (id, name): export 'COCO' from the labelling tool")


def read_coco_file(path: str | Path) -> CocoFile:
    """Read a COCO instances JSON file and check its structure (ids, names, sizes)."""
    path = Path(path)
    data = read_json(path, "a COCO instances file", "export 'COCO' from the labelling tool")
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("images", "categories")) \
            or not isinstance(data.get("annotations", []), list):
        raise _not_coco(path, "no 'images' and 'categories' lists")
    try:
        images = {}
        for entry in data["images"]:
            size = [entry.get(k) for k in ("height", "width")]
            if not isinstance(entry["file_name"], str) or not all(v is None or (isinstance(v, int) and v > 0) for v in size):
                raise ValueError(f"image {entry.get('id')}: file_name must be a name, width and height whole numbers > 0")
            images[int(entry["id"])] = CocoImage(int(entry["id"]), entry["file_name"], *size)
        names = {int(c["id"]): str(c["name"]) for c in data["categories"]}
        annotations = [{**a, "id": a.get("id"), "image_id": int(a["image_id"]), "category_id": int(a["category_id"])}
                       for a in data.get("annotations", [])]
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _not_coco(path, f"{type(exc).__name__}: {exc}") from None
    for annotation in annotations:
        if annotation["image_id"] not in images:
            raise CrackalError(f"{path}: annotation {annotation['id']} refers to image_id {annotation['image_id']}, which is not "
                               "in 'images'; add the image entry or delete the annotation")
        if annotation["category_id"] not in names:
            raise CrackalError(f"{path}: annotation {annotation['id']} has category_id {annotation['category_id']}, which is not "
                               f"in 'categories' (ids {sorted(names)}); fix the file")
    return CocoFile(path, images, names, annotations)


def _category_classes(coco: CocoFile, class_names: list[str]) -> dict[int, int]:
    """Class index of every category an annotation uses, matched by name."""
    used = {a["category_id"] for a in coco.annotations}
    unknown = sorted(f"{coco.categories[c]!r} (id {c})" for c in used if coco.categories[c] not in class_names)
    if unknown:
        suggested = ",".join([class_names[0], *(n for n in coco.class_names()[1:])])
        raise CrackalError(f"{coco.path}: categories {', '.join(unknown)} are not among the classes {class_names[1:]}; "
                           f"pass --classes naming every category, background first (e.g. --classes {suggested}), "
                           "or rename the categories in the file")
    return {c: class_names.index(coco.categories[c]) for c in used}


def _string_counts(counts: str) -> list[int]:
    """The run lengths of a compressed RLE string (pycocotools' ``rleFrString``), checked, so that
    a corrupt string is refused instead of decoded past the end of the mask."""
    values: list[int] = []
    position = 0
    while position < len(counts):
        value = shift = 0
        more = True
        while more:
            code = ord(counts[position]) - 48 if position < len(counts) else -1
            if not 0 <= code < 64:
                raise ValueError("not an RLE string")
            value |= (code & 0x1F) << shift
            more, position, shift = bool(code & 0x20), position + 1, shift + 5
            if not more and code & 0x10:
                value |= -1 << shift
        values.append(value + values[-2] if len(values) > 2 else value)
    return values


def _checked_segmentation(annotation: dict, image: CocoImage, path: Path) -> dict | list:
    """The annotation's segmentation in a form pycocotools reads safely, or a ``CrackalError``."""
    where = f"{path}: annotation {annotation['id']} of {image.file_name}"
    segmentation = annotation.get("segmentation")
    if not segmentation:
        raise CrackalError(f"{where} has no segmentation (a box only); class masks need polygons or RLE: "
                           "export the masks from the labelling tool, or train a detector on the boxes ('crackal detect train')")
    height, width = image.height, image.width
    assert height is not None and width is not None  # filled in by _check_sizes
    if isinstance(segmentation, list):
        polygons = [p for p in segmentation if isinstance(p, list)]
        if len(polygons) != len(segmentation) or not all(
                len(p) >= 6 and len(p) % 2 == 0 and all(isinstance(v, int | float) and np.isfinite(v) for v in p) for p in polygons):
            raise CrackalError(f"{where}: a polygon segmentation is a list of [x1, y1, x2, y2, x3, y3, ...] lists "
                               "(at least three points, finite pixel coordinates); fix or delete the annotation")
        return [list(map(float, p)) for p in polygons]
    if not isinstance(segmentation, dict) or "counts" not in segmentation:
        raise CrackalError(f"{where}: segmentation must be polygons or RLE ({{'counts': ..., 'size': [height, width]}})")
    if list(segmentation.get("size") or []) != [height, width]:
        raise CrackalError(f"{where}: RLE size {segmentation.get('size')} differs from the image's [height, width] "
                           f"[{height}, {width}]; the mask was drawn on another image size")
    counts = segmentation["counts"]
    try:
        runs = _string_counts(counts) if isinstance(counts, str) else [int(v) for v in counts if v == int(v)]
        ok = len(runs) == len(counts) or isinstance(counts, str)
    except (TypeError, ValueError, OverflowError):
        ok, runs = False, []
    if not ok or min(runs, default=0) < 0 or sum(runs) != height * width:
        raise CrackalError(f"{where}: the RLE counts are corrupt (run lengths >= 0 adding up to height x width = "
                           f"{height * width}); export the annotation again")
    return {"size": [height, width], "counts": counts.encode("ascii") if isinstance(counts, str) else runs}


def _region(segmentation: dict | list, height: int, width: int) -> np.ndarray:
    """The pixels a checked segmentation covers (pycocotools rasterises polygons and decodes RLE)."""
    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation["counts"], list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    return mask_utils.decode(rle).astype(bool)


def _image_file(image_dir: Path, image: CocoImage) -> Path:
    """Where an image of the file lies: its name (any folder part of ``file_name`` dropped) in ``image_dir``."""
    return image_dir / Path(image.file_name.replace("\\", "/")).name


def _check_sizes(coco: CocoFile, image_dir: Path | None, skip_missing: bool) -> list[CocoImage]:
    """The images to read: sizes checked against the files in ``image_dir`` (taken from them when the
    file omits them); missing files raise, or are left out with ``skip_missing``."""
    kept = []
    for image in coco.images.values():
        if image_dir is not None:
            file = _image_file(image_dir, image)
            if not file.is_file():
                if skip_missing:
                    continue
                raise CrackalError(f"{coco.path} lists {image.file_name}, but {file} does not exist; copy the image there, "
                                   "delete its entry from the file, or pass --skip-invalid to leave such images out")
            actual = image_size(file)
            if image.height is None or image.width is None:
                image = CocoImage(image.id, image.file_name, *actual)
            elif (image.height, image.width) != actual:
                raise CrackalError(
                    f"{coco.path}: image {image.id} ({image.file_name}) is {image.width}x{image.height} (width x height) in the "
                    f"file, but {file} is {actual[1]}x{actual[0]}; the labels were drawn on another version of the image: "
                    "label the image at its own size, or correct width and height in the file")
        elif image.height is None or image.width is None:
            raise CrackalError(f"{coco.path}: image {image.id} ({image.file_name}) has no width and height; add them")
        kept.append(image)
    return kept


def iter_masks(coco: CocoFile, class_names: list[str] | None = None, image_dir: str | Path | None = None,
               skip_missing: bool = False) -> Iterator[tuple[CocoImage, np.ndarray]]:
    """Every image of a COCO file with its class mask ``(H, W) uint8`` (0 = background), one at a
    time; an image without annotations is all background.

    Everything is checked before the first mask is made: categories are matched to
    ``class_names`` (default: the file's own, ``coco.class_names()``) by name, segmentations must
    be polygons or RLE of the image's size and, with ``image_dir``, each image's width and height
    must be those of its file there (found by name). Annotations are painted in file order: where
    two overlap, the later one wins.
    """
    names = class_names or coco.class_names()
    classes = _category_classes(coco, names)
    images = _check_sizes(coco, Path(image_dir) if image_dir is not None else None, skip_missing)
    by_id = {image.id: image for image in images}
    per_image: dict[int, list[tuple[int, dict | list]]] = {image.id: [] for image in images}
    for annotation in coco.annotations:
        if annotation["image_id"] in by_id:
            segmentation = _checked_segmentation(annotation, by_id[annotation["image_id"]], coco.path)
            per_image[annotation["image_id"]].append((classes[annotation["category_id"]], segmentation))
    for image in images:
        height, width = image.height, image.width
        assert height is not None and width is not None  # filled in by _check_sizes
        mask = np.zeros((height, width), np.uint8)
        for cls, segmentation in per_image[image.id]:
            mask[_region(segmentation, height, width)] = cls
        yield image, mask


def read_masks(path: str | Path, class_names: list[str] | None = None,
               image_dir: str | Path | None = None) -> tuple[dict[str, np.ndarray], list[str]]:
    """The class mask of every image of a COCO file, by ``file_name``, and the class names used
    (see ``iter_masks``; this holds every mask in memory)."""
    coco = read_coco_file(path)
    names = class_names or coco.class_names()
    return {image.file_name: mask for image, mask in iter_masks(coco, names, image_dir)}, names


# a COCO dataset for training ----------------------------------------------------------------


def find_coco_file(root: str | Path) -> Path | None:
    """The COCO file of a dataset root that has no mask folder: ``annotations.json``,
    ``_annotations.coco.json`` or the one ``annotations/instances_*.json``; None if there is none."""
    root = Path(root)
    if not root.is_dir():
        return None
    try:
        locate_folders(root)
        return None  # a mask layout: its masks are the labels
    except CrackalError:
        pass
    found = [root / name for name in COCO_FILE_NAMES if (root / name).is_file()]
    found += sorted((root / "annotations").glob("instances_*.json")) if (root / "annotations").is_dir() else []
    if len(found) > 1:
        raise CrackalError(f"{root} holds several COCO files ({', '.join(p.name for p in found)}); choose one with --coco FILE")
    return found[0] if found else None


def write_class_masks(coco_path: str | Path, data: str | Path, out: str | Path, class_names: list[str] | None = None,
                      skip_invalid: bool = False) -> tuple[Path, list[str]]:
    """Rasterise a COCO file's labels into class-mask PNGs ``out/NAME.png`` (0/255 for two
    classes, class indices otherwise) for the images in ``data`` (a folder of images, or a
    root with ``images/``); returns the image folder and the class names.

    The file decides which images are used: an image of the folder it does not list raises
    (an image without annotations is listed and all background), and so does a listed image
    missing from the folder, unless ``skip_invalid`` (then both are left out).
    """
    data = Path(data)
    if not data.is_dir():
        raise CrackalError(f"image folder not found: {data}; give the folder of the COCO file's images (or a root with images/)")
    image_dir = data / "images" if (data / "images").is_dir() else data
    coco = read_coco_file(coco_path)
    names = class_names or coco.class_names()
    listed = {Path(image.file_name.replace("\\", "/")).name for image in coco.images.values()}
    if len(listed) != len(coco.images):
        raise CrackalError(f"{coco.path}: two images share a file name (images are found by name in {image_dir}); rename one")
    files = list_images(image_dir)
    check_unique_stems([image_dir / name for name in listed], image_dir)  # masks are matched by the name without extension
    unlisted = [p.name for p in files if p.name not in listed]
    if unlisted and not skip_invalid:
        shown = ", ".join(unlisted[:5]) + (f" and {len(unlisted) - 5} more" if len(unlisted) > 5 else "")
        raise CrackalError(f"{coco.path} does not list {shown} of {image_dir}; add them to the file (an image without annotations "
                           "is background only), or pass --skip-invalid to leave them out")
    out = Path(out)
    for stale in out.glob("*.png") if out.is_dir() else []:
        stale.unlink()  # from an earlier, unfinished rasterisation
    count = 0
    for image, mask in iter_masks(coco, names, image_dir, skip_missing=skip_invalid):
        write_png(out / f"{Path(image.file_name.replace(chr(92), '/')).stem}.png", mask_png(mask, len(names)))
        count += 1
    if not count:
        raise CrackalError(f"none of the images {coco.path} lists is in {image_dir}; check the folder")
    return image_dir, names
