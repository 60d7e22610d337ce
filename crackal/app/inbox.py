"""Annotations from Label Studio's webhooks, kept on disk until they are in the project.

Label Studio sends a webhook once and does not retry it, and the project may be busy when one
arrives (a round is training, or another command writes it). So each annotation is first
written to ``PROJECT/label-studio/inbox/`` (one JSON file each, named in arrival order), then
imported with any earlier ones whenever the project's lock can be taken: right away
when the project is free, otherwise when the backend's round ends, at the next webhook, or when
the backend starts again. Each is stored as the image's new label (``store_labels`` with
``overwrite``: the latest annotation made in Label Studio wins; earlier labels stay in the
image's history). One that cannot be imported is moved to ``inbox/failed/`` with the reason.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
from contextlib import ExitStack
from pathlib import Path

from crackal.active.config import ALConfig
from crackal.active.label_studio import new_labels
from crackal.active.labels import NewLabel, store_labels
from crackal.active.lock import project_lock
from crackal.active.store import ProjectStore, open_project
from crackal.errors import CrackalError

INBOX = Path("label-studio") / "inbox"
log = logging.getLogger("crackal.app")
_numbers = itertools.count()
_numbers_lock = threading.Lock()


def checked_labels(store: ProjectStore, config: ALConfig, task: dict) -> list[NewLabel]:
    """The label of a task's latest kept annotation, checked (image in the pool, classes, size);
    empty when the annotation was cancelled (a skipped task)."""
    labels = new_labels(store, [task], config)
    for label in labels:
        if label.record.role != "pool":
            raise CrackalError(f"task {task.get('id')}: {label.record.name} belongs to the held-out set, whose labels are "
                               "fixed; label only pool images in Label Studio (nothing imported)")
    return labels


class Inbox:
    """The annotations waiting to enter a project (see the module docstring)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.folder = self.root / INBOX

    def put(self, task: dict) -> Path:
        """Keep a task with its one annotation (``crackal.active.label_studio``'s task form); returns its file."""
        self.folder.mkdir(parents=True, exist_ok=True)
        with _numbers_lock:
            number = next(_numbers)
        path = self.folder / f"{time.time_ns():020d}-{os.getpid()}-{number:06d}.json"
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(task))
        os.replace(tmp, path)
        return path

    def waiting(self) -> list[Path]:
        """The kept annotations, oldest first."""
        return sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []

    def failure(self, path: Path) -> str | None:
        """Why a kept annotation could not be imported, or None."""
        failed = self.folder / "failed" / path.name
        return json.loads(failed.read_text()).get("error") if failed.is_file() else None

    def deliver(self, wait: float = 0.5) -> bool:
        """Import every waiting annotation, oldest first, if the project's lock can be taken within
        ``wait`` seconds (another import takes milliseconds); False when another writer holds it
        (a round, a command: they keep waiting)."""
        while self.waiting():
            with ExitStack() as stack:
                try:
                    stack.enter_context(project_lock(self.root, "crackal serve-ml: annotations from Label Studio", wait))
                except CrackalError:
                    return False
                store, config = open_project(self.root)
                with store:
                    for path in self.waiting():
                        self._import(store, config, path)
        return True

    def _import(self, store: ProjectStore, config: ALConfig, path: Path) -> None:
        try:
            task = json.loads(path.read_text())
            labels = checked_labels(store, config, task)
            if labels:
                store_labels(store, labels, config.class_names, overwrite=True)
                log.info("task %s: %s labelled by %s", task.get("id"), labels[0].record.name, labels[0].labeller)
        except (CrackalError, ValueError, KeyError, TypeError) as exc:
            failed = self.folder / "failed"
            failed.mkdir(exist_ok=True)
            try:
                kept = {"task": json.loads(path.read_text())}
            except ValueError:
                kept = {"file": path.read_text(errors="replace")}
            (failed / path.name).write_text(json.dumps({"error": str(exc), **kept}))
            log.warning("annotation %s not imported (kept in %s): %s", path.name, failed, exc)
        path.unlink()
