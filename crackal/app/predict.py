"""Predictions for Label Studio tasks from a project's latest finished round.

A task's image is the project image it names (``data.crackal_name``, or the file name of its
URL), else a file on this machine: a ``/data/local-files/?d=PATH`` URL (``PATH`` under the
document root, as Label Studio serves local files) or a plain path under it. Anything else
(an upload kept by Label Studio, an http or cloud URL) cannot be read here: the request fails
with 422 naming the tasks, rather than giving Label Studio an empty prediction it would keep.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import numpy as np

from crackal.active.config import ALConfig
from crackal.active.label_studio import IMAGE, model_version, prediction_results, prediction_scores, record_of
from crackal.active.store import ImageRecord, ProjectStore
from crackal.active.tasks import TASKS
from crackal.app.schema import LabelConfig, project_task
from crackal.data.io import read_image
from crackal.errors import CrackalError


class ModelCache:
    """The latest round's model, loaded once per checkpoint; one prediction at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple[str, str] | None = None
        self._predict: Callable[[np.ndarray], object] | None = None

    def predict(self, task: str, checkpoint: str | Path, image: np.ndarray):
        """The label (class mask or boxes) the checkpoint's model gives an image."""
        with self._lock:
            if self._key != (task, str(checkpoint)) or self._predict is None:
                self._predict, self._key = TASKS[task].predictor(checkpoint), (task, str(checkpoint))
            return self._predict(image)


@dataclass
class TaskImage:
    """Where a task's image is: a project image (``record``) or a file on this machine."""

    path: Path
    record: ImageRecord | None = None


def local_file(url: str, document_root: Path) -> Path | None:
    """The file a ``/data/local-files/?d=`` URL (relative to ``document_root``), a ``file:`` URL or an
    absolute path names, if it lies under ``document_root`` and exists.

    >>> local_file("https://example.com/deck.png", Path("/")) is None  # not on this machine
    True
    """
    parsed = urlparse(url)
    if parsed.path.rstrip("/").endswith("/data/local-files") and "d" in parse_qs(parsed.query):
        path = document_root / unquote(parse_qs(parsed.query)["d"][0]).lstrip("/")
    elif parsed.scheme == "file" or (not parsed.scheme and url.startswith("/") and not url.startswith("/data/")):
        path = Path(unquote(parsed.path))
    else:
        return None
    path, root = path.resolve(), document_root.resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


def task_image(store: ProjectStore, task: dict, config: LabelConfig, document_root: Path) -> TaskImage:
    """Find a task's image (see the module docstring); ``CrackalError`` when it cannot be read here."""
    task = project_task(task, config)
    try:
        record = record_of(store, task)
        return TaskImage(record.path, record)
    except CrackalError:
        pass
    url = str(task["data"].get(IMAGE) or "")
    path = local_file(url, document_root)
    if path is None:
        raise CrackalError(f"task {task.get('id')}: its image {url!r} is neither an image of this project nor a local file "
                           f"under {document_root}")
    return TaskImage(path)


def predict_tasks(store: ProjectStore, project: ALConfig, tasks: list[dict], config: LabelConfig, document_root: Path,
                  models: ModelCache) -> list[dict]:
    """One prediction (``result``, ``score``, ``model_version``) per task, in order: the latest
    finished round's masks (brush) or boxes, empty before the first round. ``score`` is 1 - the
    round's acquisition score normalised over the pool it scored, so Label Studio's uncertainty
    sampling serves first the image the model most wants labelled (left out for other images)."""
    images, problems = [], []
    for task in tasks:
        try:
            images.append(task_image(store, task, config, document_root))
        except CrackalError as exc:
            problems.append(str(exc))
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise CrackalError(f"{len(problems)} of {len(tasks)} tasks have no image crackal can read ({shown}). Label images of "
                           "the project, or serve them to Label Studio as local files from the backend's --document-root")
    version = model_version(store)
    done = [r for r in store.rounds() if r["state"] == "done" and r["checkpoint"]]
    if not done:
        return [{"result": [], "model_version": version} for _ in tasks]
    by_id = store.round_scores(done[-1]["round"])
    scores = dict(zip(by_id, prediction_scores(list(by_id.values()))))
    predictions = []
    for image_of in images:
        image = read_image(image_of.path)
        prelabel = models.predict(project.task, done[-1]["checkpoint"], image)
        results = [{**r, "from_name": config.tool, "to_name": config.image}
                   for r in prediction_results(prelabel, project, *image.shape[:2])]
        prediction: dict = {"result": results, "model_version": version}
        if image_of.record is not None and scores.get(image_of.record.id) is not None:
            prediction["score"] = scores[image_of.record.id]
        predictions.append(prediction)
    return predictions
