"""Labels entering a project: from the ground-truth oracle (simulation) or from a person
(the labelling queue exported as files, masks imported back)."""

from __future__ import annotations

import csv
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crackal.acquisition.cost import crack_classes, mask_features, simulated_seconds
from crackal.active.config import ALConfig
from crackal.active.effort import Effort
from crackal.active.lock import project_lock
from crackal.active.store import ImageRecord, ProjectStore
from crackal.active.tasks import TASKS
from crackal.data.boxes import ImageBoxes, read_voc, write_voc
from crackal.data.io import MASK_SUFFIXES, image_size, mask_png, read_image, read_raw_mask, to_class_mask, write_png
from crackal.data.layout import MASK_NAME_SUFFIXES
from crackal.errors import CrackalError


def new_label_path(store: ProjectStore, record: ImageRecord, suffix: str) -> Path:
    """Where an image's next label goes: ``labels/NAME.png``, then ``NAME.v2.png`` ... (a recorded
    label file is never overwritten; a file left by an unfinished import is)."""
    version = store.label_versions(record.id) + 1
    return store.root / "labels" / (f"{record.name}{suffix}" if version == 1 else f"{record.name}.v{version}{suffix}")


def _atomic(path: Path, write) -> None:
    """``write(tmp)``, flush it to the disk, then rename: a kill (or a power cut) never leaves half
    a file under the final name, and a failed write (a full disk) leaves no temporary file."""
    tmp = path.with_name(f"{path.stem}.tmp{path.suffix}")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the new name too is on the disk before the transaction that records it
    finally:
        os.close(folder)


def _write_label(store: ProjectStore, record: ImageRecord, mask: np.ndarray, num_classes: int) -> tuple[int, Path, float]:
    """Save a class mask as the image's next label file; returns (image id, path, defect share)."""
    path = new_label_path(store, record, ".png")
    _atomic(path, lambda tmp: write_png(tmp, mask_png(mask, num_classes)))
    valid = mask != 255
    return record.id, path, float((mask[valid] > 0).mean()) if valid.any() else 0.0


def _checked_mask(record: ImageRecord, mask_path: Path, num_classes: int, binarize: bool = False) -> np.ndarray:
    mask = to_class_mask(read_raw_mask(mask_path), num_classes, mask_path, binarize)
    height, width = image_size(record.path)  # from the header: a large photo is not decoded
    if mask.shape != (height, width):
        raise CrackalError(
            f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but image {record.name} is {width}x{height} "
            "(width x height); label the image at its own size"
        )
    return mask


def _copy_box_label(store: ProjectStore, record: ImageRecord, source: Path, class_names: list[str]) -> tuple[int, Path, float]:
    """Check a VOC box file and copy it under ``labels/`` atomically; the share is 1 if it has a box."""
    boxes = read_voc(source, class_names)
    path = new_label_path(store, record, ".xml")
    _atomic(path, lambda tmp: shutil.copyfile(source, tmp))
    return record.id, path, float(len(boxes) > 0)


def simulated_effort(mask: np.ndarray, class_names: list[str]) -> Effort:
    """The simulated labeller's effort for a ground-truth class mask: ``crackal.acquisition.cost.
    simulated_seconds`` of its features (10 s + 0.08 s per crack-skeleton pixel + 6 s per region),
    source ``simulated``."""
    seconds = float(simulated_seconds(mask_features(mask, crack_classes(class_names))))
    return Effort(round(seconds, 2), source="simulated")


def label_from_ground_truth(store: ProjectStore, num_classes: int) -> int:
    """Simulation: the ground truth (a mask, or a VOC box file) labels every queued image, each
    mask with its simulated labelling time (``simulated_effort``). Returns how many."""
    queued = store.queue()
    labels: list[tuple[int, Path, float]] = []
    efforts: list[Effort | None] = []
    class_names = ALConfig.from_dict(store.settings()).class_names
    for record, _, _ in queued:
        if record.truth_path is None:
            raise CrackalError(f"{record.name} has no ground-truth mask; this project needs labels from a person")
        if record.truth_path.suffix.lower() == ".xml":
            labels.append(_copy_box_label(store, record, record.truth_path, class_names))
            efforts.append(None)
            continue
        mask = _checked_mask(record, record.truth_path, num_classes)
        labels.append(_write_label(store, record, mask, num_classes))
        efforts.append(simulated_effort(mask, class_names))
    if labels:
        store.record_labels(labels, by="oracle", round_=queued[0][1], efforts=efforts)
    return len(labels)


def latest_prelabels(store: ProjectStore, config: ALConfig, records: list[ImageRecord]) -> dict:
    """The latest finished round's pre-annotations (class masks or boxes) of these images, by
    name; none before the first round."""
    finished = [r for r in store.rounds() if r["checkpoint"]]
    if not finished:
        return {}
    return TASKS[config.task].prelabels(finished[-1]["checkpoint"], {r.name: read_image(r.path) for r in records})


def export_queue(store: ProjectStore, out: str | Path, config: ALConfig, force: bool = False) -> Path:
    """Write the queued images to ``out/images/``, the latest model's pre-annotations to
    ``out/masks/`` (class masks; empty before the first round) or ``out/boxes/`` (VOC boxes,
    detection), and ``out/queue.csv``. A labeller corrects them and the folder is imported back.
    A folder that already holds an exported queue is written over only with ``force`` (it may
    hold corrected labels not imported yet).
    """
    queued = store.queue()
    if not queued:
        raise CrackalError("the labelling queue is empty; run 'crackal al step' to select images")
    task = TASKS[config.task]
    existing = [p for p in (Path(out) / task.label_folder).glob("*") if p.is_file()] if (Path(out) / task.label_folder).is_dir() else []
    if (existing or (Path(out) / "queue.csv").exists()) and not force:
        raise CrackalError(f"{out} already holds an exported queue ({len(existing)} label files, which may be corrected "
                           "labels not imported yet): import them first ('crackal al import'), export into a new folder, "
                           "or pass --force (force=True) to write over them")
    prelabels = latest_prelabels(store, config, [record for record, _, _ in queued])
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


def _label_files(folder: Path) -> list[Path]:
    labels_dir = next((folder / n for n in ("masks", "boxes") if (folder / n).is_dir()), folder)
    if not labels_dir.is_dir():
        raise CrackalError(f"label folder not found: {folder}")
    files = sorted(p for p in labels_dir.iterdir() if p.suffix.lower() in (*MASK_SUFFIXES, ".xml") and not p.name.startswith("."))
    if not files:
        raise CrackalError(f"no mask or .xml box files in {labels_dir}; masks are PNGs named like their images")
    return files


@dataclass
class NewLabel:
    """A label about to enter a project: a class mask, boxes, or a VOC file to copy."""

    record: ImageRecord
    source: str  # where it comes from, for messages (a file name, a Label Studio task)
    label: np.ndarray | ImageBoxes | Path
    labeller: str
    effort: Effort | None = None  # the labelling time measured for it, if any


def current_label(record: ImageRecord, class_names: list[str]) -> tuple[tuple[int, int], np.ndarray | ImageBoxes]:
    """An image's current label (a class mask, or boxes) and the image's ``(height, width)``."""
    assert record.label_path is not None  # labelled records only
    if record.label_path.suffix.lower() == ".xml":
        return image_size(record.path), read_voc(record.label_path, class_names)
    mask = to_class_mask(read_raw_mask(record.label_path), len(class_names), record.label_path)
    return mask.shape, mask


def store_labels(store: ProjectStore, new: list[NewLabel], class_names: list[str], overwrite: bool = False) -> int:
    """Write checked labels as the images' next label files, then record them in one transaction
    (a kill leaves the project as before or fully imported); returns how many. Images that
    already have a label are re-labelled only with ``overwrite``."""
    seen: dict[int, NewLabel] = {}
    for item in new:
        if item.record.role != "pool":
            raise CrackalError(f"{item.source}: {item.record.name} belongs to the held-out set, whose labels are fixed "
                               "(nothing imported)")
        if item.record.id in seen:
            raise CrackalError(f"{seen[item.record.id].source} and {item.source} are both labels of {item.record.name}; "
                               "keep one (nothing imported)")
        seen[item.record.id] = item
    relabelled = [item.record for item in new if item.record.labelled]
    if relabelled and not overwrite:
        shown = ", ".join(f"{r.name} (by {r.labelled_by}, {r.labelled_at})" for r in relabelled[:5])
        raise CrackalError(f"{len(relabelled)} of these images already have labels: {shown}; pass --overwrite "
                           "(overwrite=True) to replace them (the earlier labels stay in the history). Nothing imported")
    queued_round = store.queue_rounds([item.record.id for item in new])
    current = store.current_round()
    round_ = max(queued_round.values(), default=(current["round"] + 1) if current else 0)
    labels: list[tuple[int, Path, float]] = []
    try:
        for item in new:
            labels.append(_write(store, item, class_names))
        store.record_labels(labels, by=[item.labeller for item in new], round_=round_, efforts=[item.effort for item in new])
    except Exception:
        for _, path, _ in labels:  # not recorded (a full disk, a bad label further on): no row names them
            path.unlink(missing_ok=True)
        raise
    return len(labels)


def _write(store: ProjectStore, item: NewLabel, class_names: list[str]) -> tuple[int, Path, float]:
    if isinstance(item.label, Path):
        return _copy_box_label(store, item.record, item.label, class_names)
    if isinstance(item.label, ImageBoxes):
        path = new_label_path(store, item.record, ".xml")
        size = read_image(item.record.path).shape[:2]
        _atomic(path, lambda tmp: write_voc(tmp, item.label, class_names, item.record.path.name, size))
        return item.record.id, path, float(len(item.label) > 0)
    return _write_label(store, item.record, item.label, len(class_names))


def import_labels(store: ProjectStore, folder: str | Path, num_classes: int, labeller: str = "person", binarize: bool = False,
                  overwrite: bool = False) -> int:
    """Import masks, or VOC ``.xml`` box files (detection), named after project images (from
    ``folder/masks/``, ``folder/boxes/`` or ``folder``); returns how many.

    Every file is checked before anything is written: an unknown name, two files for one image,
    a mask whose size differs from its image, unexpected values or an unknown box class raise
    ``CrackalError`` and change nothing (see ``store_labels``).
    """
    with project_lock(store.root, f"crackal al import ({labeller})"):
        class_names = ALConfig.from_dict(store.settings()).class_names
        new = []
        for path in _label_files(Path(folder)):
            name = next((path.stem[: -len(s)] for s in MASK_NAME_SUFFIXES if s and path.stem.endswith(s)), path.stem)
            record = store.by_name(name) or store.by_name(path.stem)
            if record is None:
                raise CrackalError(f"{path.name}: no image called {name!r} in this project; check the file name (nothing imported)")
            if path.suffix.lower() == ".xml":
                read_voc(path, class_names)  # checked now, copied when stored
                label: np.ndarray | Path = path
            else:
                label = _checked_mask(record, path, num_classes, binarize)
            new.append(NewLabel(record, path.name, label, labeller))
        return store_labels(store, new, class_names, overwrite)
