"""A project's labels as a COCO dataset: ``OUT/annotations.json`` and ``OUT/images/``.

Every labelled pool image goes out with its current label (a person's or, in a simulation, the
oracle's); the held-out set does not: its masks are the user's own files already. A mask label
becomes one instance per connected defect (compressed RLE), a VOC box label bbox-only
annotations (see ``crackal.interop.coco``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from crackal.active.config import ALConfig
from crackal.active.labels import current_label
from crackal.active.store import ProjectStore
from crackal.errors import CrackalError
from crackal.interop.coco import coco_dataset, write_coco_json


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
    entries = ((record.path.name, *current_label(record, config.class_names)) for record in labelled)  # one mask at a time
    data = coco_dataset(entries, config.class_names, f"crackal project {store.root.absolute().name}: labelled pool images")
    (out / "images").mkdir(parents=True, exist_ok=True)
    for record in labelled:
        shutil.copyfile(record.path, out / "images" / record.path.name)
    return write_coco_json(target, data)
