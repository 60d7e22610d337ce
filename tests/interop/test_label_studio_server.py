"""crackal against a real Label Studio server (label-studio 1.23.2, in a venv of its own).

One scenario, checked step by step: a tiny simulation project trains a round; its queue, exported
as Label Studio tasks, goes into a Label Studio project (local files storage), which must keep
every prediction and serve every image; ``crackal serve-ml`` connects as the project's ML backend
and predicts a task added by hand; annotations made through Label Studio's API reach the crackal
project by webhook; "Start training" is refused (409) while queued images lack labels and runs a
real round once they have them; and Label Studio's JSON export imports back into the project.

The server is ``$CRACKAL_LABEL_STUDIO``, else ``.venv-label-studio/bin/label-studio``, which
``./scripts/setup.sh --label-studio`` installs (``./scripts/test.sh`` does); without either the
test is skipped. Label Studio starts from an empty data folder (sqlite), which takes about a
minute, while crackal trains its first round. A failure ends with both servers' logs; ``-s``
prints the times of the steps.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import closing, contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch

from crackal import api
from crackal.active.label_studio import prediction_scores
from crackal.active.store import ImageRecord, ProjectStore
from crackal.active.tasks import TASKS
from crackal.cli import main
from crackal.data.io import read_image, read_raw_mask
from crackal.data.synth import SynthOptions, write_synthetic_dataset
from crackal.interop.label_studio import rle_to_mask
from tests.active.conftest import make_project

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
VERSION = "1.23.2"
USER, PASSWORD = "ci@crackal.test", "ci-password-123"
TOKEN = "crackal-ci-token-0123456789"  # Label Studio ignores a token of 5 characters or fewer
SIZE = 64
# A round that learns enough in ~10 s on 2 CPU cores for its masks to hold cracks (so the RLE checks check something);
# one thread, as Label Studio starts beside it (with two, round 1 once took 214 s instead of ~20 on a busy 2-core machine).
ROUND = dict(arch="unet", base_channels=16, depth=3, epochs=10, samples_per_epoch=32, warmup_epochs=0.0, lr=5e-3, threads=1)


def label_studio_binary() -> Path | None:
    chosen = os.environ.get("CRACKAL_LABEL_STUDIO")
    path = Path(chosen) if chosen else REPO / ".venv-label-studio" / "bin" / "label-studio"
    return path if path.is_file() else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.is_file() else "(no log)"


class Server:
    """A server in a process group of its own, its output in ``log``; ``call`` fails with the answer
    when its status is not the expected one."""

    def __init__(self, name: str, command: list[str], env: dict, log: Path, port: int, headers: dict | None = None) -> None:
        self.name, self.log, self.url = name, log, f"http://127.0.0.1:{port}"
        with log.open("w") as out:
            self.process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent,
                                            start_new_session=True)
        self.http = httpx.Client(base_url=self.url, headers=headers or {}, timeout=120)
        self.started, self.ready_after = time.monotonic(), None
        self.database: Path | None = None  # Label Studio's sqlite database

    def wait_ready(self, timeout: float) -> float:
        """Seconds from the start until ``GET /health`` answered 200."""
        while self.ready_after is None:
            assert self.process.poll() is None, f"{self.name} exited with {self.process.returncode} before answering"
            try:
                if self.http.get("/health", timeout=2).status_code == 200:
                    self.ready_after = time.monotonic() - self.started
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() - self.started < timeout, f"{self.name} did not answer /health within {timeout:g} s"
            time.sleep(0.25)
        return self.ready_after

    def call(self, method: str, path: str, expect=(200, 201), **options) -> httpx.Response:
        answer = self.http.request(method, path, **options)
        assert answer.status_code in expect, f"{method} {path} -> {answer.status_code}: {answer.text[:2000]}"
        return answer

    def stop(self) -> None:
        """Stop the server with everything it started: SIGTERM to its group, SIGKILL after 15 s."""
        self.http.close()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@contextmanager
def logs_on_failure(servers: list[Server]):
    """Re-raise a failure (the same exception, its traceback intact) with the end of each server's log."""
    try:
        yield
    except Exception as exc:
        exc.args = (str(exc) + "".join(f"\n\n----- {s.name} log ({s.log}), last lines -----\n{tail(s.log)}"
                                       for s in servers),)
        raise


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory):
    """Label Studio from an empty data folder, stopped at the end whatever happens. The fixture only
    starts it; ``wait_ready`` waits for it (so crackal's first round runs meanwhile)."""
    binary = label_studio_binary()
    if binary is None:
        pytest.skip("no Label Studio server: run ./scripts/setup.sh --label-studio (it installs label-studio into "
                    ".venv-label-studio/), or set $CRACKAL_LABEL_STUDIO to a label-studio executable")
    folder = tmp_path_factory.mktemp("label-studio")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update({
        "LABEL_STUDIO_BASE_DATA_DIR": str(folder / "data"),  # the sqlite database, uploads, exports
        "LABEL_STUDIO_USERNAME": USER, "LABEL_STUDIO_PASSWORD": PASSWORD, "LABEL_STUDIO_USER_TOKEN": TOKEN,
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",  # else "Authorization: Token ..." gets 401
        "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true", "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": "/",
        "LABEL_STUDIO_ML_BLOCK_LOCAL_IP": "false",  # else an ML backend on 127.0.0.1 is refused
        "LABEL_STUDIO_SSRF_PROTECTION_ENABLED": "false",  # else so is its webhook (POST /api/ml -> 403)
        "LATEST_VERSION_CHECK": "false", "COLLECT_ANALYTICS": "false", "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "",
    })
    port = free_port()
    server = Server("label-studio", [str(binary), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port)],
                    env, folder / "label-studio.log", port, {"Authorization": f"Token {TOKEN}"})
    server.database = folder / "data" / "label_studio.sqlite3"
    try:
        yield server
    finally:
        server.stop()


def serve_ml(root: Path, log: Path) -> Server:
    """``crackal serve-ml`` of this checkout, in a process of its own."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "NO_ALBUMENTATIONS_UPDATE": "1"}
    return Server("crackal serve-ml", [sys.executable, "-m", "crackal", "serve-ml", str(root), "--port", str(port)],
                  env, log, port)


def backend_state(label_studio: Server, backend: int) -> tuple[str, str | None]:
    """The state and error Label Studio stored for an ML backend after its last request. Its API
    cannot tell: every GET of a backend asks it /health and /setup again and stores "connected"."""
    with closing(sqlite3.connect(label_studio.database, timeout=10)) as db:
        return db.execute("SELECT state, error_message FROM ml_mlbackend WHERE id = ?", (backend,)).fetchone()


def retrieve_predictions(ls: Server, project: int, task: int) -> list[dict]:
    """Data Manager > Actions > Retrieve Predictions for one task; the task's predictions after it."""
    ls.call("POST", "/api/dm/actions", params={"id": "retrieve_tasks_predictions", "project": project},
            json={"selectedItems": {"all": False, "included": [task]}})
    return ls.call("GET", "/api/predictions", params={"task": task}).json()


def masks_of(results: list[dict]) -> list[tuple[str, np.ndarray]]:
    """Brush results as (class, mask), each checked to be drawn on the 64 x 64 image."""
    out = []
    for result in results:
        assert result["type"] == "brushlabels" and (result["original_height"], result["original_width"]) == (SIZE, SIZE)
        out.append((result["value"]["brushlabels"][0], rle_to_mask(result["value"]["rle"], SIZE, SIZE)))
    return out


def same_masks(a: list[dict], b: list[dict]) -> bool:
    first, second = masks_of(a), masks_of(b)
    return [n for n, _ in first] == [n for n, _ in second] and all(np.array_equal(x, y) for (_, x), (_, y) in zip(first, second))


def crack_mask(results: list[dict]) -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), bool)
    for _, drawn in masks_of(results):
        mask |= drawn
    return mask


def record_of(root: Path, name: str) -> tuple[ImageRecord, list[dict]]:
    """An image of the project and its label history."""
    store = ProjectStore(root)
    try:
        record = store.by_name(name)
        return record, store.label_history(record.id)
    finally:
        store.close()


def wait_for(check, timeout: float, what: str, step: float = 0.2):
    end = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < end, f"{what}: not within {timeout:g} s"
        time.sleep(step)
    return value


def test_crackal_with_a_real_label_studio(label_studio, tmp_path):
    times: dict[str, float] = {}
    started = time.monotonic()
    servers, ls = [label_studio], label_studio
    try:
        with logs_on_failure(servers):
            # a. a project and its first round, while Label Studio starts
            data = write_synthetic_dataset(tmp_path / "data", count=18, size=SIZE, seed=4,
                                           options=SynthOptions(crack_free_fraction=0, distractors=False))
            root = make_project(tmp_path / "survey", data, **ROUND)
            threads = torch.get_num_threads()
            try:
                first = api.al_step(root, progress=False)
            finally:
                torch.set_num_threads(threads)  # training set it to ROUND's for the whole process
            assert first.round == 1 and len(first.selected) == 3
            version = "crackal-survey-round1"
            # Labels come from Label Studio from now on, as in a real project: a round needs the queue labelled.
            api.al_config(root, ["simulation=false"])
            times["crackal round 1"] = time.monotonic() - started

            # b. the queue as Label Studio tasks
            out = tmp_path / "ls-queue"
            assert main(["al", "export-queue", str(root), str(out), "--format", "label-studio"]) == 0
            exported = json.loads((out / "tasks.json").read_text())
            assert [t["data"]["crackal_name"] for t in exported] == first.selected
            assert all(t["predictions"][0]["model_version"] == version for t in exported)
            assert any(t["predictions"][0]["result"] for t in exported), "the round's model found no crack at all"

            # c. a Label Studio project with the queue's config, a local files storage and the tasks
            times["label-studio start"] = ls.wait_ready(timeout=300)
            me = ls.call("GET", "/api/current-user/whoami").json()
            assert me["email"] == USER and ls.call("GET", "/api/version").json()["release"] == VERSION
            pid = ls.call("POST", "/api/projects", json={"title": "crackal e2e",
                                                         "label_config": (out / "label_config.xml").read_text()}).json()["id"]
            ls.call("POST", "/api/storages/localfiles", json={"project": pid, "title": "queue", "path": str(out / "images"),
                                                              "use_blob_urls": True})
            assert ls.call("POST", f"/api/projects/{pid}/import", json=exported).json()["task_count"] == 3
            tasks = {t["data"]["crackal_name"]: t for t in
                     ls.call("GET", "/api/tasks", params={"project": pid, "page_size": 100}).json()["tasks"]}
            assert sorted(tasks) == sorted(first.selected)
            kept = {}
            for sent in exported:
                name = sent["data"]["crackal_name"]
                predictions = ls.call("GET", "/api/predictions", params={"task": tasks[name]["id"]}).json()
                assert len(predictions) == 1
                kept[name], wanted = predictions[0], sent["predictions"][0]
                assert kept[name]["model_version"] == version and kept[name]["score"] == pytest.approx(wanted["score"])
                assert same_masks(kept[name]["result"], wanted["result"])
                assert ls.call("GET", sent["data"]["image"]).content == (out / "images" / f"{name}.png").read_bytes()

            # d. crackal serve-ml as the project's ML backend
            ml = serve_ml(root, tmp_path / "serve-ml.log")
            servers.append(ml)
            times["serve-ml start"] = ml.wait_ready(timeout=60)
            mlid = ls.call("POST", "/api/ml", json={"url": ml.url, "project": pid, "title": "crackal"}).json()["id"]
            assert ls.call("GET", f"/api/ml/{mlid}").json()["state"] == "CO"  # connected
            log = ml.log.read_text()
            assert '"GET /health HTTP/1.1" 200' in log and '"POST /setup HTTP/1.1" 200' in log
            assert [w["url"] for w in ls.call("GET", "/api/webhooks", params={"project": pid}).json()] == [f"{ml.url}/webhook"]

            # a task added by hand, without predictions, for a pool image the model finds cracks in
            store = ProjectStore(root)
            try:
                pool, checkpoint = store.unlabelled(), store.rounds()[-1]["checkpoint"]
                scores = store.round_scores(1)
            finally:
                store.close()
            predict = TASKS["segmentation"].predictor(checkpoint)
            extra = next((r for r in pool if (predict(read_image(r.path)) > 0).any()), None)
            assert extra is not None, "the round's model finds no crack in any pool image"
            shutil.copyfile(extra.path, out / "images" / extra.path.name)
            url = "/data/local-files/?d=" + str((out / "images" / extra.path.name).absolute()).lstrip("/")
            extra_id = ls.call("POST", f"/api/projects/{pid}/import?return_task_ids=true",
                               json=[{"data": {"image": url}}]).json()["task_ids"][0]
            predictions = retrieve_predictions(ls, pid, extra_id)  # Label Studio asks crackal's /predict
            assert [p["model_version"] for p in predictions] == [version]
            drawn = masks_of(predictions[0]["result"])
            assert [n for n, _ in drawn] == ["crack"] and np.array_equal(drawn[0][1], predict(read_image(extra.path)) == 1)
            expected_score = dict(zip(scores, prediction_scores(list(scores.values()))))[extra.id]
            assert predictions[0]["score"] == pytest.approx(expected_score)

            # e. a labeller accepts a prediction in Label Studio: the webhook makes it the image's label
            def annotate(name: str) -> None:
                result = kept[name]["result"]
                ls.call("POST", f"/api/tasks/{tasks[name]['id']}/annotations", json={
                    "result": result, "was_cancelled": False, "ground_truth": False, "lead_time": 3.5,
                    "parent_prediction": kept[name]["id"]})
                record = wait_for(lambda: record_of(root, name)[0].label_path and record_of(root, name)[0], 15,
                                  f"{name} labelled in the crackal project (by the webhook)")
                assert record.labelled_by == f"label-studio user {me['id']}"
                assert np.array_equal(read_raw_mask(record.label_path) > 0, crack_mask(result))

            annotate(first.selected[0])
            assert api.al_status(root)["queued"] == 2

            # f. Start Training: refused while two queued images have no label, a real round once they have
            ls.call("POST", f"/api/ml/{mlid}/train", json={"use_ground_truth": False})
            state, error = backend_state(ls, mlid)
            assert state == "ER" and error.startswith("409 Client Error"), (state, error)
            assert ("POST /webhook -> 409: no round started: 2 images crackal queued for labelling have no label yet"
                    in ml.log.read_text())
            for name in first.selected[1:]:
                annotate(name)
            assert api.al_status(root)["queued"] == 0
            training = time.monotonic()
            ls.call("POST", f"/api/ml/{mlid}/train", json={"use_ground_truth": False})
            assert backend_state(ls, mlid)[0] == "TR"  # crackal answered 201 (the 409's message stays)
            health = wait_for(lambda: (h := ml.call("GET", "/health").json())["round_running"] is None
                              and h["model_version"] != version and h, 120, "round 2 finished", step=1)
            times["crackal round 2"] = time.monotonic() - training
            assert health["model_version"] == "crackal-survey-round2" and health["last_round_error"] is None
            status = api.al_status(root)
            assert status["rounds"][-1]["state"] == "done" and status["rounds"][-1]["labelled"] == 7
            assert status["queued"] == 3
            # Label Studio predicts with the new model
            assert "crackal-survey-round2" in [p["model_version"] for p in retrieve_predictions(ls, pid, extra_id)]

            # g. Label Studio's JSON export back into the project
            snapshot = ls.call("POST", f"/api/projects/{pid}/exports/", json={
                "title": "crackal e2e",  # predictions in full, annotators with their e-mail (both are ids by default)
                "serialization_options": {"predictions": {"only_id": False}, "annotations__completed_by": {"only_id": False}},
                "task_filter_options": {"only_with_annotations": False}}).json()["id"]
            status_of = f"/api/projects/{pid}/exports/{snapshot}"
            assert wait_for(lambda: ls.call("GET", status_of).json()["status"] in ("completed", "failed")
                            and ls.call("GET", status_of).json()["status"], 30, "the export") == "completed"
            export = ls.call("GET", f"{status_of}/download", params={"exportType": "JSON"}).json()
            assert len(export) == 4 and sum(len(t["annotations"]) for t in export) == 3
            assert all(isinstance(p, dict) and p["model_version"].startswith("crackal-survey-round")
                       for t in export for p in t["predictions"])
            path = tmp_path / "export.json"
            path.write_text(json.dumps(export))
            assert main(["al", "import", str(root), str(path), "--format", "label-studio", "--overwrite"]) == 0
            for task in export:
                if task["annotations"]:
                    record, history = record_of(root, task["data"]["crackal_name"])
                    assert len(history) == 2 and record.labelled_by == USER  # the webhook's label, then the import's
                    assert np.array_equal(read_raw_mask(record.label_path) > 0, crack_mask(task["annotations"][0]["result"]))
    finally:
        for server in servers[1:]:
            server.stop()
        times["test"] = time.monotonic() - started
        print("times (s): " + ", ".join(f"{k} {v:.1f}" for k, v in times.items()))
