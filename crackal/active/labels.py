"""Labels entering a project: from the ground-truth oracle (simulation) or from a person
(the labelling queue exported as files, masks imported back)."""

from __future__ import annotations

import csv
import os
import shutil
from pathlib import Path

import numpy as np

from crackal.active.config import ALConfig
from crackal.active.store import ImageRecord, ProjectStore
from crackal.active.tasks import TASKS
from crackal.data.io import MASK_SUFFIXES, mask_png, read_image, read_raw_mask, to_class_mask, write_png
from crackal.data.layout import MASK_NAME_SUFFIXES
from crackal.errors import CrackalError


def _write_label(store: ProjectStore, record: ImageRecord, mask: np.ndarray, num_classes: int) -> tuple[int, Path, float]:
    """Save a class mask under ``labels/`` atomically; returns (image id, path, defect share)."""
    path = store.root / "labels" / f"{record.name}.png"
    tmp = path.with_name(path.stem + ".tmp.png")
    write_png(tmp, mask_png(mask, num_classes))
    os.replace(tmp, path)
    valid = mask != 255
    return record.id, path, float((mask[valid] > 0).mean()) if valid.any() else 0.0


def _checked_mask(record: ImageRecord, mask_path: Path, num_classes: int, binarize: bool = False) -> np.ndarray:
    mask = to_class_mask(read_raw_mask(mask_path), num_classes, mask_path, binarize)
    height, width = read_image(record.path).shape[:2]
    if mask.shape != (height, width):
        raise CrackalError(
            f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but image {record.name} is {width}x{height} "
            "(width x height); label the image at its own size"
        )
    return mask


def _copy_box_label(store: ProjectStore, record: ImageRecord, source: Path, class_names: list[str]) -> tuple[int, Path, float]:
    """Check a VOC box file and copy it under ``labels/`` atomically; the share is 1 if it has a box."""
    from crackal.data.boxes import read_voc

    boxes = read_voc(source, class_names)
    path = store.root / "labels" / f"{record.name}.xml"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.xml")
    shutil.copyfile(source, tmp)
    os.replace(tmp, path)
    return record.id, path, float(len(boxes) > 0)


def label_from_ground_truth(store: ProjectStore, num_classes: int) -> int:
    """Simulation: the ground truth (a mask, or a VOC box file) labels every queued image. Returns how many."""
    queued = store.queue()
    labels = []
    class_names = ALConfig.from_dict(store.settings()).class_names
    for record, _round, _ in queued:
        if record.truth_path is None:
            raise CrackalError(f"{record.name} has no ground-truth mask; this project needs labels from a person")
        if record.truth_path.suffix.lower() == ".xml":
            labels.append(_copy_box_label(store, record, record.truth_path, class_names))
            continue
        labels.append(_write_label(store, record, _checked_mask(record, record.truth_path, num_classes), num_classes))
    if labels:
        store.record_labels(labels, by="oracle", round_=queued[0][1])
    return len(labels)


def export_queue(store: ProjectStore, out: str | Path, config: ALConfig) -> Path:
    """Write the queued images to ``out/images/``, the latest model's pre-annotations to
    ``out/masks/`` (class masks; empty before the first round) or ``out/boxes/`` (VOC boxes,
    detection), and ``out/queue.csv``. A labeller corrects them and the folder is imported back.
    """
    queued = store.queue()
    if not queued:
        raise CrackalError("the labelling queue is empty; run 'crackal al step' to select images")
    task = TASKS[config.task]
    finished = [r for r in store.rounds() if r["checkpoint"]]
    prelabels = task.prelabels(finished[-1]["checkpoint"], {r.name: read_image(r.path) for r, _, _ in queued}) if finished else {}
    out = Path(out)
    labels_dir = out / task.label_folder
    (out / "images").mkdir(parents=True, exist_ok=True)
    labels_dir.mkdir(parents=True, exist_ok=True)
    with (out / "queue.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["rank", "image", "score", "label"])
        for rank, (record, _, score) in enumerate(queued):
            shutil.copyfile(record.path, out / "images" / record.path.name)
            size = read_image(record.path).shape[:2]
            label = task.write_prelabel(labels_dir, record, prelabels.get(record.name), config.class_names, size)
            writer.writerow([rank, record.path.name, "" if score is None else f"{score:.6g}", label.relative_to(out)])
    return out


def import_labels(store: ProjectStore, folder: str | Path, num_classes: int, labeller: str = "person", binarize: bool = False) -> int:
    """Import masks, or VOC ``.xml`` box files (detection), named after project images (from
    ``folder/masks/``, ``folder/boxes/`` or ``folder``).

    Every file is checked before anything is written: an unknown name, a mask whose size
    differs from its image, unexpected values or an unknown box class raise ``CrackalError``
    and change nothing.
    """
    from crackal.data.boxes import read_voc

    folder = Path(folder)
    labels_dir = next((folder / n for n in ("masks", "boxes") if (folder / n).is_dir()), folder)
    if not labels_dir.is_dir():
        raise CrackalError(f"label folder not found: {folder}")
    files = sorted(p for p in labels_dir.iterdir() if p.suffix.lower() in (*MASK_SUFFIXES, ".xml"))
    if not files:
        raise CrackalError(f"no mask or .xml box files in {labels_dir}; masks are PNGs named like their images")
    class_names = ALConfig.from_dict(store.settings()).class_names
    checked = []
    for path in files:
        name = next((path.stem[: -len(s)] for s in MASK_NAME_SUFFIXES if s and path.stem.endswith(s)), path.stem)
        record = store.by_name(name) or store.by_name(path.stem)
        if record is None:
            raise CrackalError(f"{path.name}: no image called {name!r} in this project; check the file name (nothing imported)")
        if record.role != "pool":
            raise CrackalError(f"{path.name}: {name} belongs to the held-out set, whose labels are fixed (nothing imported)")
        if path.suffix.lower() == ".xml":
            read_voc(path, class_names)
            checked.append((record, path))
        else:
            checked.append((record, _checked_mask(record, path, num_classes, binarize)))
    queued_round = {record.id: round_ for record, round_, _ in store.queue()}
    current = store.current_round()
    round_ = max(queued_round.values(), default=(current["round"] + 1) if current else 0)
    labels = [_copy_box_label(store, record, label, class_names) if isinstance(label, Path)
              else _write_label(store, record, label, num_classes)
              for record, label in checked]
    store.record_labels(labels, by=labeller, round_=round_)
    return len(labels)
