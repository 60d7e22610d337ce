"""The latest round's pre-annotations of queued images, cached under ``PROJECT/.cache/``.

Running the model on a large photo takes seconds, so the worker pre-annotates the new queue
right after a round (``precompute``) and the editor reads the cached file; an image without
one (a round run from the command line) is pre-annotated on first opening. Files are named by
round and image id and written under a temporary name first.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from crackal.active.config import ALConfig
from crackal.active.store import ImageRecord, ProjectStore
from crackal.data.boxes import ImageBoxes, read_voc, write_voc
from crackal.data.io import image_size
from crackal.progress import Progress

CACHE = ".cache"
_MODEL = threading.Lock()  # one model run at a time in the server


def latest_round(store: ProjectStore) -> int | None:
    """The last round with a trained model, or None before the first."""
    finished = [r["round"] for r in store.rounds() if r["checkpoint"]]
    return finished[-1] if finished else None


def cache_folder(store: ProjectStore, kind: str, round_: int) -> Path:
    """``PROJECT/.cache/KIND/NNN/`` (created)."""
    folder = store.root / CACHE / kind / f"{round_:03d}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _path(store: ProjectStore, config: ALConfig, record: ImageRecord, round_: int) -> Path:
    return cache_folder(store, "prelabels", round_) / f"{record.id}{'.xml' if config.task == 'detection' else '.png'}"


def _write(path: Path, prelabel, record: ImageRecord, config: ALConfig) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    if isinstance(prelabel, ImageBoxes):
        write_voc(tmp, prelabel, config.class_names, record.path.name, image_size(record.path))
    else:
        Image.fromarray(np.asarray(prelabel, np.uint8)).save(tmp, format="PNG", compress_level=1)
    os.replace(tmp, path)


def _read(path: Path, config: ALConfig) -> np.ndarray | ImageBoxes:
    if path.suffix == ".xml":
        return read_voc(path, config.class_names)
    with Image.open(path) as img:
        return np.asarray(img, np.uint8)


def prelabel(store: ProjectStore, config: ALConfig, record: ImageRecord) -> np.ndarray | ImageBoxes | None:
    """The latest round's class mask (or boxes) of an image; None before the first round."""
    from crackal.active.labels import latest_prelabels  # torch, only once a round has run

    round_ = latest_round(store)
    if round_ is None:
        return None
    path = _path(store, config, record, round_)
    if not path.is_file():
        with _MODEL:
            if not path.is_file():
                _write(path, latest_prelabels(store, config, [record])[record.name], record, config)
    return _read(path, config)


def precompute(store: ProjectStore, config: ALConfig, progress: Progress, chunk: int = 1) -> int:
    """Pre-annotate every queued image that has no cached pre-annotation yet; returns how many."""
    from crackal.active.labels import latest_prelabels

    round_ = latest_round(store)
    if round_ is None:
        return 0
    todo = [record for record, _, _ in store.queue() if not _path(store, config, record, round_).is_file()]
    for start in progress.bar(range(0, len(todo), chunk), desc=f"pre-annotating the queue ({len(todo)} images)",
                               unit="images" if chunk == 1 else "batches"):
        records = todo[start:start + chunk]
        found = latest_prelabels(store, config, records)
        for record in records:
            _write(_path(store, config, record, round_), found[record.name], record, config)
    return len(todo)
