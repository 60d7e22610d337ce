"""A project's labelling queue in Label Studio, and Label Studio's labels back.

``export_tasks`` writes the queue as Label Studio tasks, each with the latest model's
pre-annotation as a prediction (brush masks per class, or rectangles for a detection project)
and its acquisition score, plus the matching labelling config. ``import_export`` reads a Label
Studio JSON export (brush, polygon and rectangle results) back into the project, checked as a
whole and stored atomically like any import (``store_labels``). ``export_annotations`` writes the
labelled images with their labels as annotations. An annotation's ``lead_time`` carries the
labelling time both ways (crackal's measured active seconds out, Label Studio's time in).

Label Studio serves the task with the *lowest* prediction score first under uncertainty
sampling, so a prediction's ``score`` is 1 - the acquisition score normalised over the queue:
the image the model most wants labelled comes first.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse
from xml.sax.saxutils import quoteattr

import numpy as np

from crackal.active.config import ALConfig
from crackal.active.effort import Effort, parse_effort
from crackal.active.labels import NewLabel, current_label, latest_prelabels, store_labels
from crackal.active.lock import project_lock
from crackal.active.store import ImageRecord, ProjectStore
from crackal.data.boxes import ImageBoxes
from crackal.data.io import read_image
from crackal.errors import CrackalError
from crackal.inference.render import class_color
from crackal.interop import read_json
from crackal.interop.label_studio import box_from_rectangle, brush_result, mask_from_results, rectangle_result
from crackal.runs.config import TrainConfig

IMAGE = "image"  # the <Image> tag's name
TOOL = "label"  # the labels tag's name: BrushLabels (segmentation) or RectangleLabels (detection)
POLYGON = "polygon"  # PolygonLabels, for large defects (patches, potholes) in a segmentation project
LOCAL_FILES = "/data/local-files/?d="  # Label Studio's URL prefix for files under LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT


def _hex(rgb: Iterable[float]) -> str:
    return "#" + "".join(f"{int(v):02x}" for v in rgb)


def label_config(class_names: list[str], task: str = "segmentation", colors: list[list[int]] | None = None) -> str:
    """The Label Studio labelling config (XML) of a project's classes.

    >>> print(label_config(["background", "crack"]).splitlines()[3])
        <Label value="crack" background="#ff2828"/>
    """
    labels = "\n".join(f'    <Label value={quoteattr(name)} background="{_hex(colors[i] if colors else class_color(i))}"/>'
                       for i, name in enumerate(class_names) if i > 0)
    if task == "detection":
        tools = f'  <RectangleLabels name="{TOOL}" toName="{IMAGE}">\n{labels}\n  </RectangleLabels>'
    else:
        tools = (f'  <BrushLabels name="{TOOL}" toName="{IMAGE}">\n{labels}\n  </BrushLabels>\n'
                 f'  <PolygonLabels name="{POLYGON}" toName="{IMAGE}" strokeWidth="2">\n{labels}\n  </PolygonLabels>')
    return f'<View>\n  <Image name="{IMAGE}" value="${IMAGE}" zoom="true" zoomControl="true"/>\n{tools}\n</View>\n'


def config_labels(xml: str) -> set[str]:
    """The label values a labelling config defines (every ``<Label value=...>``)."""
    return set(re.findall(r"<Label\b[^>]*\bvalue=\"([^\"]*)\"", xml))


def model_version(store: ProjectStore) -> str:
    """``crackal-<project>-round<N>``, N the last finished round (0 before the first)."""
    done = [r["round"] for r in store.rounds() if r["state"] == "done"]
    return f"crackal-{store.root.absolute().name}-round{done[-1] if done else 0}"


def prediction_results(prelabel, config: ALConfig, height: int, width: int) -> list[dict]:
    """A pre-annotation (class mask or boxes) as Label Studio results: one brush result per
    class present, or one rectangle per box."""
    if isinstance(prelabel, ImageBoxes):
        return [rectangle_result(box, config.class_names[int(label)], width, height, from_name=TOOL, to_name=IMAGE)
                for box, label in zip(prelabel.boxes.tolist(), prelabel.labels)]
    if prelabel is None:
        return []
    return [brush_result(prelabel == index, name, from_name=TOOL, to_name=IMAGE)
            for index, name in enumerate(config.class_names) if index > 0 and (prelabel == index).any()]


def prediction_scores(scores: list[float | None]) -> list[float | None]:
    """1 - the acquisition score normalised over the queue (the first to label gets the lowest)."""
    known = [s for s in scores if s is not None]
    if not known:
        return [None] * len(scores)
    low, high = min(known), max(known)
    return [None if s is None else round(1 - ((s - low) / (high - low) if high > low else 1.0), 6) for s in scores]


def _class_colors(config: ALConfig) -> list[list[int]] | None:
    """The brush colours of a segmentation project's classes (None: the defaults; none for boxes)."""
    return config.train.class_colors if isinstance(config.train, TrainConfig) and config.task == "segmentation" else None


def export_tasks(store: ProjectStore, out: str | Path, config: ALConfig, url_prefix: str = LOCAL_FILES,
                 document_root: str | Path = "/", force: bool = False) -> Path:
    """Write ``out/tasks.json`` (the queue as Label Studio tasks, most wanted first),
    ``out/label_config.xml`` and the images under ``out/images/``; returns ``out/tasks.json``.

    Each task's image URL is ``url_prefix`` + the copied image's path relative to
    ``document_root``: with the defaults, Label Studio started with
    ``LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true`` and ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=/``
    serves them; with ``url_prefix="http://host/queue/"`` and ``document_root=out``, a web server.
    """
    queued = store.queue()
    if not queued:
        raise CrackalError("the labelling queue is empty; run 'crackal al step' to select images")
    out = _export_folder(out, force)
    prelabels = latest_prelabels(store, config, [record for record, _, _ in queued])
    version, scores = model_version(store), prediction_scores([score for _, _, score in queued])
    tasks = []
    for rank, ((record, round_, score), prediction_score) in enumerate(zip(queued, scores)):
        task, height, width = _task_of(record, out, url_prefix, document_root)
        task["data"].update({"crackal_rank": rank, "crackal_round": round_, "acquisition_score": score})
        if record.name in prelabels:
            prediction: dict[str, object] = {"model_version": version,
                                             "result": prediction_results(prelabels[record.name], config, height, width)}
            if prediction_score is not None:
                prediction["score"] = prediction_score
            task["predictions"] = [prediction]
        tasks.append(task)
    (out / "label_config.xml").write_text(label_config(config.class_names, config.task, _class_colors(config)))
    (out / "tasks.json").write_text(json.dumps(tasks, indent=1))
    return out / "tasks.json"


def _export_folder(out: str | Path, force: bool) -> Path:
    """The folder of an export: refused when it holds one already, unless ``force``."""
    out = Path(out)
    if (out / "tasks.json").exists() and not force:
        raise CrackalError(f"{out} already holds exported tasks; export into a new folder, or pass --force (force=True) "
                           "to write over them")
    return out


def _task_of(record: ImageRecord, out: Path, url_prefix: str, document_root: str | Path) -> tuple[dict, int, int]:
    """A task showing the image, copied to ``out/images/``, and the image's height and width."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    copy = out / "images" / record.path.name
    shutil.copyfile(record.path, copy)
    height, width = read_image(record.path).shape[:2]
    relative = copy.absolute().relative_to(Path(document_root).absolute()).as_posix()
    return {"data": {IMAGE: url_prefix + relative, "crackal_name": record.name}}, height, width


def export_annotations(store: ProjectStore, out: str | Path, config: ALConfig, url_prefix: str = LOCAL_FILES,
                       document_root: str | Path = "/", force: bool = False) -> Path:
    """Write every labelled pool image as a Label Studio task with its current label as an
    annotation (``completed_by`` the labeller, ``lead_time`` the active seconds measured in
    crackal's editor, where measured), the labelling config and the images, like ``export_tasks``;
    returns ``out/tasks.json``. Importing that file back keeps labels and times."""
    labelled = store.labelled()
    if not labelled:
        raise CrackalError("no labelled pool image to export yet; label some first")
    out = _export_folder(out, force)
    tasks = []
    for record in labelled:
        task, height, width = _task_of(record, out, url_prefix, document_root)
        latest = store.label_history(record.id)[-1]
        annotation: dict = {"completed_by": {"email": record.labelled_by}, "created_at": record.labelled_at,
                            "result": prediction_results(current_label(record, config.class_names)[1], config, height, width)}
        if latest["active_seconds"] is not None:
            annotation["lead_time"] = latest["active_seconds"]
        tasks.append({**task, "annotations": [annotation]})
    (out / "label_config.xml").write_text(label_config(config.class_names, config.task, _class_colors(config)))
    (out / "tasks.json").write_text(json.dumps(tasks, indent=1))
    return out / "tasks.json"


def image_name(url: str) -> str:
    """The file name (without extension) of a task's image URL: ``?d=path`` of local files, the
    path of an upload (``/data/upload/3/1a2b3c4d-x.png`` -> ``1a2b3c4d-x``), or a plain path."""
    parsed = urlparse(url)
    path = parse_qs(parsed.query).get("d", [parsed.path])[0]
    return Path(unquote(path)).stem


def record_of(store: ProjectStore, task: dict) -> ImageRecord:
    """The pool or held-out image a Label Studio task shows (by ``data.crackal_name``, else the image URL's file name)."""
    data = task.get("data") or {}
    name = data.get("crackal_name") or image_name(str(data.get(IMAGE, "")))
    if re.match(r"^[0-9a-f]{8}-", name) and store.by_name(name) is None:
        name = name[9:]  # Label Studio prefixes uploaded files with 8 hex digits
    record = store.by_name(name)
    if record is None:
        raise CrackalError(f"task {task.get('id', '?')}: no image called {name!r} in this project (nothing imported)")
    return record


def _effort(annotation: dict) -> Effort | None:
    """Label Studio's ``lead_time`` (seconds on the annotation) as the label's effort; None when
    absent or not a plausible figure (the label is kept, its time is not)."""
    try:
        return parse_effort({"active_seconds": annotation.get("lead_time"), "prelabel": "unknown"}, source="label-studio")
    except CrackalError:
        return None


def _labeller(annotation: dict) -> str:
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        return str(who.get("email") or who.get("username") or who.get("id"))
    return f"label-studio user {who}" if who is not None else "label-studio"


def latest_annotation(task: dict) -> dict | None:
    """The task's latest annotation that was not cancelled (skipped), or None."""
    kept = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
    return max(kept, key=lambda a: (a.get("updated_at") or a.get("created_at") or "", a.get("id") or 0), default=None)


def label_of(annotation: dict, record: ImageRecord, config: ALConfig, task_id) -> np.ndarray | ImageBoxes:
    """An annotation's results as a class mask (segmentation) or boxes (detection), checked."""
    results = annotation.get("result") or []
    height, width = read_image(record.path).shape[:2]
    for result in results:
        size = (result.get("original_height"), result.get("original_width"))
        if None not in size and size != (height, width):
            raise CrackalError(f"task {task_id}: labels drawn on a {size[1]}x{size[0]} image, but {record.name} is "
                               f"{width}x{height} (nothing imported)")
    if config.task != "detection":
        return mask_from_results(results, config.class_names, height, width)
    rectangles = [r for r in results if r.get("type") == "rectanglelabels"]
    unknown = {n for r in rectangles for n in r["value"].get("rectanglelabels", []) if n not in config.class_names[1:]}
    if unknown:
        raise CrackalError(f"task {task_id}: unknown classes {sorted(unknown)}; the project has {config.class_names[1:]}")
    boxes = [box_from_rectangle(r["value"], width, height) for r in rectangles]
    labels = [config.class_names.index(r["value"]["rectanglelabels"][0]) for r in rectangles]
    return ImageBoxes(np.array(boxes, np.float32).reshape(-1, 4), np.array(labels, np.int64))


def new_labels(store: ProjectStore, tasks: list[dict], config: ALConfig) -> list[NewLabel]:
    """The checked labels of Label Studio tasks (tasks without a kept annotation are left out)."""
    new = []
    for task in tasks:
        annotation = latest_annotation(task)
        if annotation is None:
            continue
        record = record_of(store, task)
        label = label_of(annotation, record, config, task.get("id", "?"))
        new.append(NewLabel(record, f"task {task.get('id', record.name)}", label, _labeller(annotation), _effort(annotation)))
    return new


def read_export(path: str | Path) -> list[dict]:
    """A Label Studio JSON export: a list of tasks."""
    tasks = read_json(path, "a Label Studio JSON export", "export the project as JSON")
    if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
        raise CrackalError(f"{path} is not a Label Studio JSON export (a list of tasks); export the project as JSON")
    return tasks


def import_tasks(store: ProjectStore, tasks: list[dict], config: ALConfig, overwrite: bool = False) -> int:
    """Import the labels of Label Studio tasks (see ``new_labels`` and ``store_labels``)."""
    with project_lock(store.root, "crackal al import (Label Studio)"):
        return store_labels(store, new_labels(store, tasks, config), config.class_names, overwrite)


def import_export(store: ProjectStore, path: str | Path, config: ALConfig, overwrite: bool = False) -> int:
    """Import a Label Studio JSON export (every task's latest annotation that was not cancelled)."""
    return import_tasks(store, read_export(path), config, overwrite)
