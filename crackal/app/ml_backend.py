"""A project as a Label Studio ML backend (``crackal serve-ml``): Label Studio shows the latest
round's masks or boxes as pre-annotations, sends each annotation back into the project, and
starts the next round from its "Start training" button.

The protocol is Label Studio's (its ``ml/api_connector.py`` and ``label_studio_ml/api.py``):

* ``GET /health`` (and ``/``): ``{"status": "UP", "model_class", "model_version"}``, plus what
  the backend is doing (``round_running``, ``annotations_waiting``).
* ``POST /setup`` ``{"project": "ID.TIMESTAMP", "schema": CONFIG_XML, ...}``: ``{"model_version"}``;
  400 when the config's labels are not the project's classes or it lacks the labels tag the
  predictions need (``BrushLabels``, or ``RectangleLabels`` for detection).
* ``POST /predict`` ``{"tasks": [...], "label_config": ...}``: ``{"results": [{"result", "score",
  "model_version"}, ...]}``, one per task in order (see ``crackal.app.predict``); 422 when a
  task's image cannot be read here.
* ``POST /webhook`` ``{"action": ..., "annotation", "task", "project"}``: ``ANNOTATION_CREATED`` and
  ``ANNOTATION_UPDATED`` store the annotation as the image's new label (201; 202 when the project
  is busy and it waits in the inbox, see ``crackal.app.inbox``; 422 when it cannot be a label of
  the project; a cancelled one is skipped); ``START_TRAINING`` starts the next round in a thread
  (201 at once; 409 when one is running, the project is busy or the queue is not labelled);
  other actions are acknowledged and ignored (200).
* ``POST /train`` (older Label Studio, ``{"annotations": [tasks], ...}``): the tasks' annotations of
  images not labelled yet are stored, then a round starts as with ``START_TRAINING``.

Errors are ``{"error": message}``. ``model_version`` is ``crackal-<project>-round<N>``, N the last
finished round (0 before the first, when predictions are empty).
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from crackal.active.label_studio import model_version, record_of
from crackal.active.labels import NewLabel
from crackal.active.store import open_project
from crackal.app.http import ERROR_HANDLERS, BasicAuth, BodyLimit, error, read_json
from crackal.app.inbox import Inbox, checked_labels
from crackal.app.predict import ModelCache, predict_tasks
from crackal.app.rounds import RoundRunner
from crackal.app.schema import LabelConfig, check_classes, project_task, read_label_config
from crackal.errors import CrackalError

DEFAULT_MAX_BODY = 64 * 2 ** 20
ANNOTATION_EVENTS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")


class MLBackend:
    """The endpoints of one project's backend (``create_ml_backend`` builds the app)."""

    def __init__(self, project: str | Path, max_body: int, document_root: Path) -> None:
        self.root, self.max_body, self.document_root = Path(project), max_body, document_root
        self.inbox = Inbox(self.root)
        self.rounds = RoundRunner(self.root, self.inbox)
        self.models = ModelCache()

    def _label_config(self, xml, task: str) -> LabelConfig:
        return read_label_config(xml, task) if isinstance(xml, str) and xml.strip() else LabelConfig()

    async def health(self, request: Request) -> JSONResponse:
        """Alive, and the model version Label Studio should expect."""
        def status() -> dict:
            store, config = open_project(self.root)
            with store:
                return {"status": "UP", "model_class": f"crackal-{config.task}", "model_version": model_version(store),
                        "round_running": self.rounds.round if self.rounds.running() else None,
                        "last_round_error": self.rounds.error, "annotations_waiting": len(self.inbox.waiting())}
        return JSONResponse(await run_in_threadpool(status))

    async def setup(self, request: Request) -> JSONResponse:
        """Check Label Studio's labelling config against the project; answer the model version."""
        data = await read_json(request)

        def check() -> str:
            store, config = open_project(self.root)
            with store:
                schema = data.get("schema") or data.get("label_config")
                if schema:
                    check_classes(read_label_config(str(schema), config.task), config.class_names)
                return model_version(store)
        try:
            return JSONResponse({"model_version": await run_in_threadpool(check)})
        except CrackalError as exc:
            return error(400, f"this Label Studio project does not fit crackal project {self.root.name}: {exc}", request)

    async def predict(self, request: Request) -> JSONResponse:
        """Pre-annotations of the tasks, in order."""
        data = await read_json(request)
        tasks = data.get("tasks")
        if isinstance(tasks, dict):
            tasks = [tasks]
        if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
            return error(400, "/predict needs 'tasks': a list of Label Studio tasks", request)

        def work() -> dict:
            store, config = open_project(self.root)
            with store:
                results = predict_tasks(store, config, tasks, self._label_config(data.get("label_config"), config.task),
                                        self.document_root, self.models)
                return {"results": results, "model_version": model_version(store)}
        return JSONResponse(await run_in_threadpool(work))

    async def webhook(self, request: Request) -> JSONResponse:
        """Label Studio's events: annotations in, training started, the rest acknowledged."""
        data = await read_json(request)
        action = data.get("action")
        if action in ANNOTATION_EVENTS:
            return await run_in_threadpool(self._annotation, data, request)
        if action == "START_TRAINING":
            return await run_in_threadpool(self._start, [], request)
        return JSONResponse({"status": "ignored", "detail": f"crackal does nothing on {action!r} events"})

    def _annotation(self, data: dict, request: Request) -> JSONResponse:
        annotation, task = data.get("annotation"), data.get("task")
        if not isinstance(annotation, dict) or not isinstance(task, dict):
            return error(400, f"a {data.get('action')} event needs its 'annotation' and 'task' (Label Studio sends them "
                              "when the webhook sends its payload)", request)
        store, config = open_project(self.root)
        with store:
            project: dict = data["project"] if isinstance(data.get("project"), dict) else {}
            item = project_task(task, self._label_config(project.get("label_config"), config.task), [annotation])
            if item["id"] is None:
                item["id"] = annotation.get("task")
            labels = checked_labels(store, config, item)
        if not labels:
            return JSONResponse({"status": "skipped", "detail": "the annotation was cancelled (the task was skipped)"})
        kept = self.inbox.put(item)
        if not self.inbox.deliver():
            why = f"round {self.rounds.round} is training" if self.rounds.running() else "another command writes it"
            return JSONResponse({"status": "queued", "detail": f"the project is busy ({why}); the annotation waits in "
                                 f"{kept.parent} and is imported as soon as the project is free"}, status_code=202)
        failure = self.inbox.failure(kept)
        if failure:
            return error(422, failure, request)
        store = open_project(self.root)[0]
        with store:
            record = store.by_name(labels[0].record.name)
        labelled_by = record.labelled_by if record is not None else None
        return JSONResponse({"status": "ok", "image": labels[0].record.name, "labelled_by": labelled_by}, status_code=201)

    def _start(self, labels: list[NewLabel], request: Request) -> JSONResponse:
        try:
            round_ = self.rounds.start(labels)
        except CrackalError as exc:
            return error(409, f"no round started: {exc}", request)
        return JSONResponse({"status": "ok", "round": round_, "detail": f"round {round_} started; GET /health tells when "
                             "it is done (model_version changes)"}, status_code=201)

    async def train(self, request: Request) -> JSONResponse:
        """Older Label Studio's training request: import unlabelled images' annotations, start a round."""
        data = await read_json(request)
        tasks = data.get("annotations")
        if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
            return error(400, "/train needs 'annotations': a list of Label Studio tasks with their annotations", request)

        def labels() -> list[NewLabel]:
            store, config = open_project(self.root)
            with store:
                label_config = self._label_config(data.get("label_config"), config.task)
                new = []
                for task in tasks:
                    item = project_task(task, label_config)
                    try:
                        record = record_of(store, item)
                    except CrackalError:
                        continue  # a task of Label Studio's project that is no image of this one
                    if not record.labelled and record.role == "pool":
                        new += checked_labels(store, config, item)
                return new
        return await run_in_threadpool(self._start, await run_in_threadpool(labels), request)


def create_ml_backend(project: str | Path, basic_auth: tuple[str, str] | None = None, max_body: int = DEFAULT_MAX_BODY,
                      document_root: str | Path | None = None) -> Starlette:
    """The ML backend of a project as an ASGI app (serve it with ``uvicorn.run``; see the module docstring).

    ``basic_auth=(user, password)`` makes every request need HTTP basic auth; ``max_body`` limits a
    request body (bytes, 413 past it); ``document_root`` is where ``/data/local-files/?d=`` paths
    start (default ``$LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT``, else ``/``), and only files under it
    are read. Annotations left waiting by an earlier run are imported now if the project is free.
    """
    open_project(project)[0].close()  # a missing project fails here, not at the first request
    if basic_auth is not None and (len(basic_auth) != 2 or not basic_auth[0] or not basic_auth[1]):
        raise CrackalError("basic auth needs a user and a password (USER:PASS)")
    root = Path(document_root or os.environ.get("LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT") or "/")
    backend = MLBackend(project, max_body, root)
    backend.inbox.deliver()
    routes = [Route("/", backend.health, methods=["GET"]), Route("/health", backend.health, methods=["GET"]),
              Route("/setup", backend.setup, methods=["POST"]), Route("/predict", backend.predict, methods=["POST"]),
              Route("/webhook", backend.webhook, methods=["POST"]), Route("/train", backend.train, methods=["POST"])]
    too_big = (f"the request body is larger than the backend's limit of {max_body / 2 ** 20:g} MB; start it with a larger "
               "--max-body-mb (or send fewer tasks at once)")
    middleware = [Middleware(BodyLimit, limit=max_body, message=too_big)]
    middleware += [Middleware(BasicAuth, credentials=basic_auth)] if basic_auth else []
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=ERROR_HANDLERS)
    app.state.backend = backend
    return app
