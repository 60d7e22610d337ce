"""A project's labels as a COCO dataset: ``OUT/annotations.json`` and ``OUT/images/``.

Every labelled pool image goes out with its current label (a person's or, in a simulation, the
oracle's); the held-out set does not: its masks are the user's own files already. A mask label
becomes one instance per connected defect (compressed RLE), a VOC box label bbox-only
annotations (see ``crackal.interop.coco``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from crackal.active.config import ALConfig
from crackal.active.store import ImageRecord, ProjectStore
from crackal.data.boxes import ImageBoxes, read_voc
from crackal.data.io import image_size, read_raw_mask, to_class_mask
from crackal.errors import CrackalError
from crackal.interop.coco import coco_dataset, write_coco_json


def _label(record: ImageRecord, class_names: list[str]) -> tuple[tuple[int, int], np.ndarray | ImageBoxes]:
    """An image's current label (a class mask, or boxes) and the image's ``(height, width)``."""
    assert record.label_path is not None  # labelled records only
    if record.label_path.suffix.lower() == ".xml":
        return image_size(record.path), read_voc(record.label_path, class_names)
    mask = to_class_mask(read_raw_mask(record.label_path), len(class_names), record.label_path)
    return mask.shape, mask


def export_coco(store: ProjectStore, out: str | Path, config: ALConfig, force: bool = False) -> Path:
    """Write every labelled pool image to ``out/images/`` and their labels to
    ``out/annotations.json`` (COCO instances, category id = class index); returns the JSON file.
    A folder holding an earlier export is written over only with ``force``."""
    out = Path(out)
    target = out / "annotations.json"
    if target.exists() and not force:
        raise CrackalError(f"{out} already holds a COCO export; export into a new folder, or pass --force (force=True) to write over it")
    labelled = store.labelled()
    if not labelled:
        raise CrackalError(f"{store.root} has no labelled images yet; import labels ('crackal al import') or run 'crackal al step' first")
    entries = ((record.path.name, *_label(record, config.class_names)) for record in labelled)  # one mask at a time
    data = coco_dataset(entries, config.class_names, f"crackal project {store.root.absolute().name}: labelled pool images")
    (out / "images").mkdir(parents=True, exist_ok=True)
    for record in labelled:
        shutil.copyfile(record.path, out / "images" / record.path.name)
    return write_coco_json(target, data)
