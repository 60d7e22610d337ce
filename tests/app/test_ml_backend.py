"""The Label Studio ML backend (crackal.app.ml_backend) driven with the requests Label Studio sends.

The request bodies below are Label Studio's, field for field, as its sources build them:
label_studio/ml/api_connector.py (MLApi.setup, MLApi._prep_prediction_req, MLApi.train) and
label_studio/webhooks/utils.py + models.py (a webhook: {"action", "annotation", "project", "task"}),
with the example payloads of docs/source/guide/webhook_reference.md; brush results as the
editor saves them (format "rle"). Only ids, paths and the RLE bytes are filled in per test.
"""

from __future__ import annotations

import base64
import json
import shutil
import threading
import time

import numpy as np
import pytest
from starlette.testclient import TestClient

from crackal.active.label_studio import label_config
from crackal.active.lock import project_lock
from crackal.active.loop import RoundResult, run_round
from crackal.active.project import create_project
from crackal.active.store import ProjectStore
from crackal.active.tasks import TASKS
from crackal.app import rounds as rounds_module
from crackal.app.ml_backend import create_ml_backend
from crackal.data.boxes import ImageBoxes
from crackal.data.io import read_image, read_raw_mask
from crackal.data.layout import find_pairs
from crackal.data.synth import write_synthetic_dataset
from crackal.interop.label_studio import mask_to_rle, rle_to_mask
from tests.active.conftest import fast_config

SIZE = 48
PROJECT_ID = "1.1718000000"  # MLApi: f"{project.id}.{int(project.created_at.timestamp())}"
# Label Studio's "Semantic segmentation with masks" template, its brush tag named "tag" (not crackal's "label").
SEGMENTATION_CONFIG = """<View>
  <Image name="image" value="$image" zoom="true"/>
  <BrushLabels name="tag" toName="image">
    <Label value="crack" background="rgba(255, 0, 0, 0.7)"/>
  </BrushLabels>
</View>"""
# The "project" of a webhook (ProjectWebhookSerializer; docs/source/guide/webhook_reference.md), trimmed of counters.
WEBHOOK_PROJECT = {
    "id": 1, "title": "Bridge deck cracks", "description": "", "label_config": SEGMENTATION_CONFIG, "expert_instruction": "",
    "show_instruction": False, "show_skip_button": True, "enable_empty_annotation": True, "show_annotation_history": False,
    "show_collab_predictions": True, "evaluate_predictions_automatically": False, "token": "9105a1d897e52286",
    "result_count": 0, "color": "#FFFFFF", "maximum_annotations": 1, "min_annotations_to_start_training": 0,
    "control_weights": {}, "model_version": "", "data_types": {"image": "Image"}, "is_draft": False, "is_published": False,
    "created_at": "2024-06-10T06:13:20.000000Z", "updated_at": "2024-06-10T06:20:41.000000Z",
    "sampling": "Uncertainty sampling", "show_ground_truth_first": False, "show_overlap_first": False,
    "overlap_cohort_percentage": 100, "task_data_login": None, "task_data_password": None, "organization": 1,
    "created_by": 1, "task_number": 6, "finished_task_number": 1, "total_predictions_number": 6,
    "total_annotations_number": 1, "num_tasks_with_annotations": 1, "useful_annotation_number": 1,
    "ground_truth_number": 0, "skipped_annotations_number": 0,
}


def local_url(path) -> str:
    """How Label Studio names a local file (LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=/)."""
    return "/data/local-files/?d=" + str(path.absolute()).lstrip("/")


def ls_task(task_id: int, image_url: str, annotations: list | None = None) -> dict:
    """A task as TaskSimpleSerializer / TaskWebhookSerializer write it."""
    return {"id": task_id, "data": {"image": image_url}, "meta": {}, "created_at": "2024-06-10T06:14:02.000000Z",
            "updated_at": "2024-06-10T06:14:02.000000Z", "is_labeled": bool(annotations), "overlap": 1, "inner_id": task_id,
            "total_annotations": len(annotations or []), "cancelled_annotations": 0, "total_predictions": 0,
            "comment_count": 0, "unresolved_comment_count": 0, "last_comment_updated_at": None, "project": 1,
            "updated_by": None, "file_upload": None, "comment_authors": [], "annotations": annotations or [],
            "predictions": []}


def brush(mask: np.ndarray, label: str = "crack") -> dict:
    """One brush region as Label Studio's editor saves it."""
    return {"original_width": mask.shape[1], "original_height": mask.shape[0], "image_rotation": 0,
            "value": {"format": "rle", "rle": mask_to_rle(mask), "brushlabels": [label]},
            "id": "Jq1eLwV6JH", "from_name": "tag", "to_name": "image", "type": "brushlabels", "origin": "manual"}


def annotation(annotation_id: int, task_id: int, result: list, cancelled: bool = False, user: int = 1) -> dict:
    """An annotation as AnnotationWebhookSerializer writes it (completed_by is the user's id)."""
    return {"id": annotation_id, "result": result, "was_cancelled": cancelled, "ground_truth": False,
            "created_at": "2024-06-10T06:20:41.000000Z", "updated_at": "2024-06-10T06:20:41.000000Z", "lead_time": 37.13,
            "prediction": {}, "result_count": 0, "task": task_id, "completed_by": user, "project": 1, "updated_by": user,
            "parent_prediction": None, "parent_annotation": None, "last_action": None, "last_created_by": None}


def webhook(action: str, task: dict, ann: dict) -> dict:
    """ANNOTATION_CREATED / ANNOTATION_UPDATED (emit_webhooks_for_instance, with the nested task)."""
    return {"action": action, "annotation": ann, "project": WEBHOOK_PROJECT, "task": {k: v for k, v in task.items()
                                                                                        if k not in ("annotations", "predictions")}}


def predict_request(tasks: list[dict], config: str = SEGMENTATION_CONFIG) -> dict:
    """MLApi._prep_prediction_req."""
    return {"tasks": tasks, "project": PROJECT_ID, "label_config": config,
            "params": {"login": None, "password": None, "hostname": "http://localhost:8080", "context": None}}


def setup_request(config: str = SEGMENTATION_CONFIG) -> dict:
    """MLApi.setup."""
    return {"project": PROJECT_ID, "hostname": "http://localhost:8080", "schema": config,
            "access_token": "1b2c3d4e5f60718293a4b5c6d7e8f9001a2b3c4d", "extra_params": None}


START_TRAINING = {"action": "START_TRAINING", "project": WEBHOOK_PROJECT}  # MLApi.train, webhook branch


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_synthetic_dataset(tmp_path_factory.mktemp("ls-data"), count=8, size=SIZE, seed=4)


def new_project(root, data, simulation: bool = True, task: str = "segmentation"):
    pairs = find_pairs(data)
    fast = dict(crop_size=32, samples_per_epoch=4) if task == "segmentation" else {}
    config = fast_config(simulation=simulation, task=task, initial=2, query_size=2, iterations=2, **fast)
    pool = [(p.name, p.image, p.mask if simulation else None) for p in pairs[:6]]
    create_project(root, pool, [(p.name, p.image, p.mask) for p in pairs[6:]], config).close()
    return root


@pytest.fixture(scope="module")
def trained_base(tmp_path_factory, data):
    root = new_project(tmp_path_factory.mktemp("trained") / "base", data)
    run_round(root)
    return root


@pytest.fixture
def trained(tmp_path, trained_base):
    """A simulation project after one round (its queue: 2 images without labels)."""
    return shutil.copytree(trained_base, tmp_path / "p")


def client(root, **options) -> TestClient:
    return TestClient(create_ml_backend(root, **options))


def queued_names(root) -> list[str]:
    store = ProjectStore(root)
    try:
        return [record.name for record, _, _ in store.queue()]
    finally:
        store.close()


def unlabelled_names(root) -> list[str]:
    store = ProjectStore(root)
    try:
        return [r.name for r in store.unlabelled()]
    finally:
        store.close()


def record(root, name):
    store = ProjectStore(root)
    try:
        return store.by_name(name), store.label_history(store.by_name(name).id)
    finally:
        store.close()


def image_path(root, name):
    return record(root, name)[0].path


def test_health_and_setup_before_any_round(tmp_path, data):
    root = new_project(tmp_path / "fresh", data)
    api = client(root)
    for path in ("/health", "/"):
        answer = api.get(path)
        assert answer.status_code == 200
        assert answer.json() | {"annotations_waiting": 0} == {
            "status": "UP", "model_class": "crackal-segmentation", "model_version": "crackal-fresh-round0",
            "round_running": None, "last_round_error": None, "annotations_waiting": 0}
    assert api.post("/setup", json=setup_request()).json() == {"model_version": "crackal-fresh-round0"}
    assert api.post("/setup", json=setup_request(label_config(["background", "crack"]))).status_code == 200

    wrong = api.post("/setup", json=setup_request(SEGMENTATION_CONFIG.replace(
        '</BrushLabels>', '<Label value="pothole"/></BrushLabels>')))
    assert wrong.status_code == 400
    assert "not classes of the project ['pothole']" in wrong.json()["error"] and "crack" in wrong.json()["error"]
    boxes_only = '<View><Image name="image" value="$image"/><RectangleLabels name="b" toName="image"><Label value="crack"/>' \
                 '</RectangleLabels></View>'
    assert "no <BrushLabels> tag" in api.post("/setup", json=setup_request(boxes_only)).json()["error"]
    assert "not valid XML" in api.post("/setup", json=setup_request("<View>")).json()["error"]

    task = ls_task(1, local_url(image_path(root, queued_names(root)[0])))
    answer = api.post("/predict", json=predict_request([task]))
    assert answer.status_code == 200
    assert answer.json() == {"results": [{"result": [], "model_version": "crackal-fresh-round0"}],
                             "model_version": "crackal-fresh-round0"}


def test_predict_two_tasks_after_a_round(trained, tmp_path, monkeypatch):
    loads, real = [], TASKS["segmentation"].predictor
    stripe = np.zeros((SIZE, SIZE), np.uint8)
    stripe[24, 8:40] = 1  # added to the tiny model's mask, so that every prediction has a region to decode

    def predictor(checkpoint):
        loads.append(checkpoint)
        predict = real(checkpoint)
        return lambda image: np.maximum(predict(image), stripe)

    monkeypatch.setattr(TASKS["segmentation"], "predictor", predictor)
    queued = queued_names(trained)[0]
    outside = tmp_path / "elsewhere" / "deck_0042.png"  # not a project image: read from disk
    outside.parent.mkdir()
    shutil.copyfile(image_path(trained, "synth_007"), outside)
    tasks = [ls_task(11, local_url(image_path(trained, queued))), ls_task(12, local_url(outside))]
    api = client(trained)

    answer = api.post("/predict", json=predict_request(tasks))
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert len(results) == 2 and all(r["model_version"] == "crackal-p-round1" for r in results)
    assert 0 <= results[0]["score"] <= 1 and "score" not in results[1]  # acquisition score only for pool images
    store = ProjectStore(trained)
    predict = real(store.rounds()[0]["checkpoint"])
    store.close()
    for result, image in zip(results, [read_image(image_path(trained, queued)), read_image(outside)]):
        [region] = result["result"]
        assert (region["type"], region["from_name"], region["to_name"]) == ("brushlabels", "tag", "image")
        assert (region["original_width"], region["original_height"], region["value"]["brushlabels"]) == (SIZE, SIZE, ["crack"])
        decoded = rle_to_mask(region["value"]["rle"], SIZE, SIZE)
        assert decoded.shape == (SIZE, SIZE) and np.array_equal(decoded, np.maximum(predict(image), stripe) == 1)
    assert api.post("/predict", json=predict_request(tasks[:1])).status_code == 200
    assert len(loads) == 1  # the model is loaded once per checkpoint

    unreadable = api.post("/predict", json=predict_request([tasks[0], ls_task(13, "https://cdn.example.com/deck.png"),
                                                            ls_task(14, "/data/upload/1/5a1b2c3d-deck.png")]))
    assert unreadable.status_code == 422
    message = unreadable.json()["error"]
    assert message.startswith("2 of 3 tasks have no image crackal can read") and "task 13" in message and "task 14" in message


def test_an_annotation_lands_in_the_project_and_an_update_replaces_it(trained):
    name = queued_names(trained)[0]
    path = image_path(trained, name)
    drawn = np.zeros((SIZE, SIZE), bool)
    drawn[20:23, 5:40] = True
    task = ls_task(21, local_url(path))
    api = client(trained)

    answer = api.post("/webhook", json=webhook("ANNOTATION_CREATED", task, annotation(301, 21, [brush(drawn)])))
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"status": "ok", "image": name, "labelled_by": "label-studio user 1"}
    stored, history = record(trained, name)
    assert stored.labelled and stored.labelled_by == "label-studio user 1" and len(history) == 1
    assert np.array_equal(read_raw_mask(stored.label_path) > 0, drawn)
    assert name not in queued_names(trained)

    drawn[30:33, 5:40] = True  # a person's edit in Label Studio replaces the label; the first stays in the history
    answer = api.post("/webhook", json=webhook("ANNOTATION_UPDATED", task, annotation(301, 21, [brush(drawn)], user=2)))
    assert answer.status_code == 201
    stored, history = record(trained, name)
    assert len(history) == 2 and stored.labelled_by == "label-studio user 2"
    assert np.array_equal(read_raw_mask(stored.label_path) > 0, drawn)

    other = ls_task(22, local_url(image_path(trained, queued_names(trained)[0])))
    skipped = api.post("/webhook", json=webhook("ANNOTATION_CREATED", other, annotation(302, 22, [], cancelled=True)))
    assert skipped.status_code == 200 and skipped.json()["status"] == "skipped"
    assert api.post("/webhook", json={"action": "TASKS_CREATED", "tasks": [], "project": WEBHOOK_PROJECT}).json()["status"] == \
        "ignored"
    held = ls_task(23, local_url(image_path(trained, "synth_006")))
    refused = api.post("/webhook", json=webhook("ANNOTATION_CREATED", held, annotation(303, 23, [brush(drawn)])))
    assert refused.status_code == 422 and "held-out set" in refused.json()["error"]
    unknown = ls_task(24, "/data/upload/1/5a1b2c3d-deck.png")
    refused = api.post("/webhook", json=webhook("ANNOTATION_CREATED", unknown, annotation(304, 24, [brush(drawn)])))
    assert refused.status_code == 422 and "no image called 'deck'" in refused.json()["error"]
    assert api.get("/health").json()["annotations_waiting"] == 0


def test_an_annotation_waits_while_the_project_is_busy(trained):
    name = queued_names(trained)[0]
    drawn = np.zeros((SIZE, SIZE), bool)
    drawn[10, :] = True
    payload = webhook("ANNOTATION_CREATED", ls_task(31, local_url(image_path(trained, name))), annotation(401, 31, [brush(drawn)]))
    app = create_ml_backend(trained)
    api = TestClient(app)
    with project_lock(trained, "crackal al step (another terminal)"):
        answer = api.post("/webhook", json=payload)
        assert answer.status_code == 202 and answer.json()["status"] == "queued"
        assert api.get("/health").json()["annotations_waiting"] == 1
        assert not record(trained, name)[0].labelled
    assert create_ml_backend(trained).state.backend.inbox.waiting() == []  # a (re)started backend imports what waits
    assert record(trained, name)[0].labelled_by == "label-studio user 1"


def test_start_training_runs_a_round_in_the_background(tmp_path, data):
    root = new_project(tmp_path / "person", data, simulation=False)  # a person labels, in Label Studio
    app = create_ml_backend(root)
    api = TestClient(app)
    refused = api.post("/webhook", json=START_TRAINING)
    assert refused.status_code == 409
    assert "2 images crackal queued for labelling have no label yet" in refused.json()["error"]
    for task_id, name in enumerate(queued_names(root), 51):
        drawn = read_raw_mask(find_pairs(data)[int(name[-3:])].mask) > 0  # the labeller draws the true cracks
        payload = webhook("ANNOTATION_CREATED", ls_task(task_id, local_url(image_path(root, name))),
                          annotation(task_id + 100, task_id, [brush(drawn)]))
        assert api.post("/webhook", json=payload).status_code == 201

    started = time.monotonic()
    answer = api.post("/webhook", json=START_TRAINING)
    assert answer.status_code == 201 and answer.json()["round"] == 1, answer.text
    assert time.monotonic() - started < 5  # answered at once; the round trains in its thread
    app.state.backend.rounds.thread.join(120)
    assert api.get("/health").json()["model_version"] == "crackal-person-round1"
    assert app.state.backend.rounds.result.labelled == 2 and app.state.backend.rounds.error is None
    assert len(queued_names(root)) == 2  # the next images to label


def test_one_round_at_a_time_and_not_while_another_command_writes(trained, monkeypatch):
    release = threading.Event()
    monkeypatch.setattr(rounds_module, "run_round", lambda root: release.wait(30) and RoundResult(2, 4, {}, [], None))
    app = create_ml_backend(trained)
    api = TestClient(app)
    with project_lock(trained, "crackal al import (another terminal)"):
        busy = api.post("/webhook", json=START_TRAINING)
    assert busy.status_code == 409 and "is busy: 'crackal al import (another terminal)'" in busy.json()["error"]

    for name in queued_names(trained):  # label the queue, so a round may start
        drawn = np.zeros((SIZE, SIZE), bool)
        payload = webhook("ANNOTATION_CREATED", ls_task(61, local_url(image_path(trained, name))), annotation(61, 61, [brush(drawn)]))
        assert api.post("/webhook", json=payload).status_code == 201
    try:
        first = api.post("/webhook", json=START_TRAINING)
        assert first.status_code == 201 and first.json()["round"] == 2
        assert api.get("/health").json()["round_running"] == 2
        second = api.post("/webhook", json=START_TRAINING)
        assert second.status_code == 409 and "round 2 is already training" in second.json()["error"]
        late_name = unlabelled_names(trained)[0]
        late = webhook("ANNOTATION_CREATED", ls_task(62, local_url(image_path(trained, late_name))),
                       annotation(62, 62, [brush(np.ones((SIZE, SIZE), bool))]))
        assert api.post("/webhook", json=late).status_code == 202  # waits for the round's end
    finally:
        release.set()
        app.state.backend.rounds.thread.join(30)
    assert api.get("/health").json() | {"model_version": None} == {
        "status": "UP", "model_class": "crackal-segmentation", "model_version": None, "round_running": None,
        "last_round_error": None, "annotations_waiting": 0}
    assert record(trained, late_name)[0].labelled_by == "label-studio user 1"


def test_train_imports_the_annotations_of_unlabelled_images_then_starts_a_round(tmp_path, data, monkeypatch):
    monkeypatch.setattr(rounds_module, "run_round", lambda root: RoundResult(1, 2, {}, [], None))
    root = new_project(tmp_path / "person", data, simulation=False)
    names = queued_names(root)
    drawn = np.zeros((SIZE, SIZE), bool)
    drawn[5:9, 5:9] = True
    tasks = [ls_task(71 + i, local_url(image_path(root, name)), [annotation(81 + i, 71 + i, [brush(drawn)])])
             for i, name in enumerate(names)]
    tasks.append(ls_task(79, "/data/upload/1/0f0e0d0c-other.png", [annotation(89, 79, [brush(drawn)])]))  # not in the project
    body = {"annotations": tasks, "project": PROJECT_ID, "label_config": SEGMENTATION_CONFIG,  # MLApi.train, /train branch
            "hostname": "http://localhost:8080", "params": {"login": None, "password": None}}
    app = create_ml_backend(root)
    answer = TestClient(app).post("/train", json=body)
    assert answer.status_code == 201 and answer.json()["round"] == 1, answer.text
    app.state.backend.rounds.thread.join(30)
    assert all(record(root, name)[0].labelled_by == "label-studio user 1" for name in names)


def test_detection_predictions_are_rectangles(tmp_path, data, monkeypatch):
    root = new_project(tmp_path / "boxes", data, task="detection")
    store = ProjectStore(root)
    store.start_round(1, 2)
    store.update_round(1, state="done", checkpoint=str(root / "rounds" / "001" / "best.pt"))  # a finished round's model
    store.close()
    monkeypatch.setattr(TASKS["detection"], "predictor",
                        lambda checkpoint: lambda image: ImageBoxes(np.array([[12, 6, 36, 18]]), np.array([1])))
    config = '<View><Image name="photo" value="$img"/><RectangleLabels name="box" toName="photo"><Label value="crack"/>' \
             '</RectangleLabels></View>'
    task = {"id": 91, "data": {"img": local_url(image_path(root, "synth_000"))}}
    answer = client(root).post("/predict", json=predict_request([task], config))
    assert answer.status_code == 200, answer.text
    [region] = answer.json()["results"][0]["result"]
    assert (region["type"], region["from_name"], region["to_name"]) == ("rectanglelabels", "box", "photo")
    assert region["value"] == {"x": 25.0, "y": 12.5, "width": 50.0, "height": 25.0, "rotation": 0, "rectanglelabels": ["crack"]}


def test_basic_auth_body_limit_and_errors_as_json(tmp_path, data):
    root = new_project(tmp_path / "guarded", data)
    api = client(root, basic_auth=("labelstudio", "s3cret"), max_body=4000)
    for headers in ({}, {"Authorization": "Basic " + base64.b64encode(b"labelstudio:wrong").decode()},
                    {"Authorization": "Bearer s3cret"}, {"Authorization": "Basic !!!"}):
        answer = api.get("/health", headers=headers)
        assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith('Basic realm="crackal"')
        assert "authentication required" in answer.json()["error"]
    auth = ("labelstudio", "s3cret")
    assert api.get("/health", auth=auth).status_code == 200

    big = predict_request([ls_task(i, "/x.png") for i in range(20)])
    assert len(json.dumps(big)) > 4000
    too_big = api.post("/predict", json=big, auth=auth)
    assert too_big.status_code == 413 and "--max-body-mb" in too_big.json()["error"]
    not_json = api.post("/predict", content=b"tasks=1", auth=auth)
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["error"]
    assert api.post("/predict", json={"tasks": "x"}, auth=auth).status_code == 400
    assert api.get("/predict", auth=auth).status_code == 405
    missing = api.get("/versions", auth=auth)
    assert missing.status_code == 404 and "error" in missing.json()


def test_serve_ml_command(tmp_path, data, monkeypatch, capsys):
    import uvicorn

    from crackal.cli import main

    served = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.update(app=app, **options))
    monkeypatch.delenv("CRACKAL_BASIC_AUTH", raising=False)
    root = new_project(tmp_path / "served", data)
    assert main(["serve-ml", str(root), "--port", "9191", "--basic-auth", "labelstudio:s3cret", "--max-body-mb", "0.5"]) == 0
    assert (served["host"], served["port"]) == ("127.0.0.1", 9191)
    assert "Backend URL http://127.0.0.1:9191 with Basic Authentication" in capsys.readouterr().out
    api = TestClient(served["app"])
    assert api.get("/health").status_code == 401
    assert api.get("/health", auth=("labelstudio", "s3cret")).json()["model_version"] == "crackal-served-round0"
    assert api.post("/predict", content=b"x" * 600_000, auth=("labelstudio", "s3cret")).status_code == 413

    monkeypatch.setenv("CRACKAL_BASIC_AUTH", "nopassword")
    assert main(["serve-ml", str(root)]) == 1
    assert "--basic-auth takes USER:PASS" in capsys.readouterr().err
    monkeypatch.delenv("CRACKAL_BASIC_AUTH")
    assert main(["serve-ml", str(tmp_path / "nothing")]) == 1
    assert "no crackal project" in capsys.readouterr().err
    assert main(["serve-ml", str(root), "--host", "0.0.0.0"]) == 0
    assert "without --basic-auth" in capsys.readouterr().out
