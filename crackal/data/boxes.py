"""Bounding boxes: Pascal VOC, COCO and YOLO files, and boxes derived from masks.

Boxes are ``(N, 4) float32`` ``x0, y0, x1, y1`` in pixels, ``x1``/``y1`` exclusive (a box
around the single pixel at row 3, column 5 is ``[5, 3, 6, 4]``); labels are class indices
(``>= 1``, background is 0) into the dataset's class names.

File conventions: VOC stores 0-based *inclusive* pixel corners (``xmax = x1 - 1``, as
LabelImg and the PaveSeg boxes do); COCO stores ``[x, y, width, height]`` with
``category_id`` = class index; YOLO stores ``id cx cy w h`` normalised to the image size,
with ``id = class index - 1`` and the names in ``classes.txt`` beside the files.
"""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from crackal.data.io import IGNORE_INDEX
from crackal.errors import CrackalError

BOX_SUFFIXES = {"voc": ".xml", "yolo": ".txt"}


@dataclass
class ImageBoxes:
    """The boxes of one image (``scores`` only for predictions)."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    scores: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        self.labels = np.asarray(self.labels, np.int64).reshape(-1)
        if self.scores is not None:
            self.scores = np.asarray(self.scores, np.float32).reshape(-1)

    def __len__(self) -> int:
        return len(self.boxes)

    def above(self, threshold: float) -> ImageBoxes:
        """The boxes whose score reaches ``threshold`` (all of them for ground truth)."""
        if self.scores is None:
            return self
        keep = self.scores >= threshold
        return ImageBoxes(self.boxes[keep], self.labels[keep], self.scores[keep])


def boxes_from_mask(mask: np.ndarray, num_classes: int, merge_distance: int = 8, min_pixels: int = 20) -> ImageBoxes:
    """One box per connected defect of each class in a class-index mask.

    Pixels of one class closer than ``merge_distance`` px belong to the same defect (so one
    branching crack with gaps gives one box, not fifty); defects of fewer than ``min_pixels``
    pixels are dropped. Each box is the extent of the defect's own pixels (8-connected).

    >>> mask = np.zeros((10, 10), np.uint8); mask[2:4, 3:8] = 1
    >>> boxes_from_mask(mask, 2, min_pixels=1).boxes
    array([[3., 2., 8., 4.]], dtype=float32)
    """
    boxes, labels = [], []
    radius = max(0, merge_distance) // 2 + max(0, merge_distance) % 2
    for cls in range(1, num_classes):
        pixels = (mask == cls) & (mask != IGNORE_INDEX)
        if not pixels.any():
            continue
        grown = ndimage.binary_dilation(pixels, np.ones((3, 3), bool), iterations=radius) if radius else pixels
        components, count = ndimage.label(grown, np.ones((3, 3), int))
        components = components * pixels  # each defect keeps only its own pixels
        sizes = np.bincount(components.ravel(), minlength=count + 1)
        for index, region in enumerate(ndimage.find_objects(components), start=1):
            if region is None or sizes[index] < min_pixels:
                continue
            rows, cols = region
            boxes.append([cols.start, rows.start, cols.stop, rows.stop])
            labels.append(cls)
    return ImageBoxes(np.array(boxes, np.float32).reshape(-1, 4), np.array(labels, np.int64))


def _atomic_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _class_index(name: str, class_names: list[str], path: Path) -> int:
    if name not in class_names[1:]:
        raise CrackalError(f"{path}: unknown class {name!r}; known classes: {', '.join(class_names[1:])} (pass --classes)")
    return class_names.index(name)


def _fmt(values) -> str:
    return "[" + ", ".join(f"{float(v):g}" for v in values) + "]"


def read_voc(path: str | Path, class_names: list[str]) -> ImageBoxes:
    """Boxes of one Pascal VOC XML file.

    A box with ``xmax < xmin`` or ``ymax < ymin``, or a coordinate that is not a finite number,
    raises ``CrackalError`` naming the file and the box (``xmin == xmax`` is a 1-pixel-wide box:
    VOC corners are inclusive).
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
        # a missing <bndbox> or coordinate raises AttributeError / TypeError here, reported below
        objects = [(o.findtext("name", "").strip(),
                    [float(o.find("bndbox").findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")])  # type: ignore[union-attr, arg-type]
                   for o in root.iter("object")]
    except (ET.ParseError, AttributeError, TypeError, ValueError, OSError) as exc:
        raise CrackalError(f"cannot read VOC boxes from {path} ({exc}); expected <object><name/><bndbox>xmin..ymax</bndbox>") from None
    for number, (name, (x0, y0, x1, y1)) in enumerate(objects, start=1):
        corners = f"xmin {x0:g}, ymin {y0:g}, xmax {x1:g}, ymax {y1:g}"
        if not np.isfinite([x0, y0, x1, y1]).all():
            raise CrackalError(f"{path}: object {number} ({name}) has a coordinate that is not a number ({corners}); fix or delete it")
        if x1 < x0 or y1 < y0:
            raise CrackalError(
                f"{path}: object {number} ({name}) has {'xmax < xmin' if x1 < x0 else 'ymax < ymin'} ({corners}); "
                "a VOC box needs xmin <= xmax and ymin <= ymax (inclusive pixel corners): fix or delete it"
            )
    boxes = [[x0, y0, x1 + 1, y1 + 1] for _, (x0, y0, x1, y1) in objects]
    return ImageBoxes(np.array(boxes, np.float32), np.array([_class_index(n, class_names, path) for n, _ in objects], np.int64))


def write_voc(path: str | Path, boxes: ImageBoxes, class_names: list[str], image_name: str, size: tuple[int, int]) -> None:
    """Write one Pascal VOC XML file; ``size`` is ``(height, width)``."""
    root = ET.Element("annotation")
    ET.SubElement(root, "filename").text = image_name
    size_el = ET.SubElement(root, "size")
    for key, value in (("width", size[1]), ("height", size[0]), ("depth", 3)):
        ET.SubElement(size_el, key).text = str(value)
    for box, label in zip(boxes.boxes, boxes.labels):
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = class_names[label]
        ET.SubElement(obj, "difficult").text = "0"
        bndbox = ET.SubElement(obj, "bndbox")
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        for key, value in zip(("xmin", "ymin", "xmax", "ymax"), (x0, y0, x1 - 1, y1 - 1)):
            ET.SubElement(bndbox, key).text = str(value)
    ET.indent(root)
    _atomic_text(Path(path), ET.tostring(root, encoding="unicode") + "\n")


def read_yolo(path: str | Path, size: tuple[int, int], num_classes: int) -> ImageBoxes:
    """Boxes of one YOLO text file for an image of ``size`` ``(height, width)``.

    Each line is ``id cx cy w h``: a whole class id, then four numbers normalised to 0..1 with
    ``w``, ``h`` > 0; any other line raises ``CrackalError`` naming the file and the line.
    """
    path = Path(path)
    height, width = size
    try:
        lines = path.read_text().splitlines()
    except (ValueError, OSError) as exc:
        raise CrackalError(f"cannot read YOLO boxes from {path} ({exc}); expected lines 'id cx cy w h' (normalised)") from None
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{path} line {number} ({line.strip()[:60]!r})"
        try:
            values = [float(v) for v in line.split()]
        except ValueError:
            values = []
        if len(values) != 5:
            raise CrackalError(f"cannot read YOLO boxes from {where}: expected 'id cx cy w h', five numbers (normalised)")
        if not np.isfinite(values).all() or values[0] != int(values[0]):
            raise CrackalError(f"{where}: the class id must be a whole number and the coordinates finite numbers")
        if not all(0.0 <= v <= 1.0 for v in values[1:]):
            raise CrackalError(
                f"{where}: YOLO coordinates are normalised to 0..1 (pixels divided by the image width or height); "
                "fix or delete the box"
            )
        if values[3] <= 0 or values[4] <= 0:
            raise CrackalError(f"{where}: the box has no area (width and height must be > 0); fix or delete it")
        rows.append(values)
    table = np.array(rows, np.float64).reshape(-1, 5)
    labels = table[:, 0].astype(np.int64) + 1
    if ((labels < 1) | (labels >= num_classes)).any():
        raise CrackalError(f"{path}: class ids must be 0..{num_classes - 2} (YOLO id = class index - 1)")
    cx, cy, w, h = table[:, 1] * width, table[:, 2] * height, table[:, 3] * width, table[:, 4] * height
    return ImageBoxes(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1), labels)


def write_yolo(path: str | Path, boxes: ImageBoxes, size: tuple[int, int]) -> None:
    """Write ``boxes`` as a YOLO text file for an image of ``size`` ``(height, width)``: one line
    ``class cx cy w h`` per box, normalised to ``[0, 1]``, class = label - 1."""
    height, width = size
    lines = []
    for (x0, y0, x1, y1), label in zip(boxes.boxes.astype(np.float64), boxes.labels):
        cx, cy, w, h = (x0 + x1) / 2 / width, (y0 + y1) / 2 / height, (x1 - x0) / width, (y1 - y0) / height
        lines.append(f"{label - 1} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}")
    _atomic_text(Path(path), "\n".join(lines) + ("\n" if lines else ""))


def read_coco(path: str | Path) -> tuple[dict[str, ImageBoxes], list[str]]:
    """All images' boxes of a COCO JSON file, keyed by image file stem, and the class names
    (background first; ``category_id`` is the class index).

    A box whose width or height is not > 0, a coordinate that is not a finite number, an
    unknown ``category_id`` or two images with one file stem raise ``CrackalError`` naming the
    file, the annotation and the image.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        categories = {int(c["id"]): c["name"] for c in data["categories"]}
        images = {int(i["id"]): str(i["file_name"]) for i in data["images"]}
        annotations = [(a.get("id"), int(a["image_id"]), [float(v) for v in a["bbox"]], int(a["category_id"]))
                       for a in data.get("annotations", [])]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError, OSError) as exc:
        raise CrackalError(f"cannot read COCO boxes from {path} ({exc}); expected images, annotations and categories") from None
    if not categories or min(categories) < 1:
        raise CrackalError(f"{path}: category ids must start at 1 (0 is the background)")
    stems: dict[int, str] = {}
    seen: dict[str, str] = {}
    for image_id, file_name in images.items():
        stem = Path(file_name).stem
        if stem in seen and seen[stem] != file_name:
            raise CrackalError(
                f"{path}: images {seen[stem]} and {file_name} share a name (boxes are matched to images by the name "
                "without extension); rename one of them"
            )
        seen[stem], stems[image_id] = file_name, stem
    per_image: dict[str, list] = {stem: [] for stem in stems.values()}
    for ann_id, image_id, bbox, category in annotations:
        if image_id not in stems:
            raise CrackalError(f"{path}: annotation {ann_id} refers to image_id {image_id}, which is not in images")
        where = f"{path}: annotation {ann_id} of {images[image_id]}, bbox {_fmt(bbox) if bbox else '[]'}"
        if len(bbox) != 4 or not np.isfinite(bbox).all():
            raise CrackalError(f"{where}: a COCO bbox is four finite numbers [x, y, width, height]; fix or delete it")
        x, y, w, h = bbox
        if w <= 0 or h <= 0:
            raise CrackalError(
                f"{where}: {'width' if w <= 0 else 'height'} {w if w <= 0 else h:g} is not > 0 (a COCO bbox is "
                "[x, y, width, height]); fix or delete the box"
            )
        if category not in categories:
            raise CrackalError(f"{where}: category_id {category} is not one of the categories {sorted(categories)}")
        per_image[stems[image_id]].append(([x, y, x + w, y + h], category))
    names = ["background"] + [categories.get(i, f"class{i}") for i in range(1, max(categories) + 1)]
    result = {stem: ImageBoxes(np.array([b for b, _ in items], np.float32), np.array([c for _, c in items], np.int64))
              for stem, items in per_image.items()}
    return result, names


def fit_to_image(boxes: ImageBoxes, size: tuple[int, int], source: str | Path, image_name: str) -> ImageBoxes:
    """Boxes clipped to an image of ``size`` ``(height, width)``.

    A box lying entirely outside the image, or with no area, raises ``CrackalError`` naming
    ``source`` (the box file), the image and the box; one that only sticks out is clipped.
    """
    height, width = size
    b = boxes.boxes.astype(np.float64)
    for number, (x0, y0, x1, y1) in enumerate(b, start=1):
        where = f"{source}: box {number} of {image_name} {_fmt((x0, y0, x1, y1))} (x0, y0, x1, y1 in pixels)"
        if not np.isfinite([x0, y0, x1, y1]).all() or x1 <= x0 or y1 <= y0:
            raise CrackalError(f"{where} has no area; fix or delete it")
        if x0 >= width or y0 >= height or x1 <= 0 or y1 <= 0:
            raise CrackalError(f"{where} lies entirely outside the {width}x{height} image; fix or delete it")
    if not len(b):
        return boxes
    clipped = np.stack([b[:, 0].clip(0, width), b[:, 1].clip(0, height), b[:, 2].clip(0, width), b[:, 3].clip(0, height)], 1)
    return ImageBoxes(clipped, boxes.labels, boxes.scores)


def write_coco(path: str | Path, images: dict[str, tuple[ImageBoxes, tuple[int, int]]], class_names: list[str]) -> None:
    """One COCO JSON file for ``{file name: (boxes, (height, width))}``."""
    data = {"images": [], "annotations": [], "categories": [{"id": i, "name": n} for i, n in enumerate(class_names) if i]}
    for image_id, (file_name, (boxes, (height, width))) in enumerate(sorted(images.items()), start=1):
        data["images"].append({"id": image_id, "file_name": file_name, "height": height, "width": width})
        for (x0, y0, x1, y1), label in zip(boxes.boxes.tolist(), boxes.labels.tolist()):
            data["annotations"].append({"id": len(data["annotations"]) + 1, "image_id": image_id, "category_id": label,
                                        "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0), "iscrowd": 0})
    _atomic_text(Path(path), json.dumps(data))
