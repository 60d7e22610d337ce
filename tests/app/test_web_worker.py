"""The dashboard's "start next round": a real round in the worker's child process, its progress,
the pre-annotations and review layers it leaves, and a killed worker that resumes."""

from __future__ import annotations

import io
import os
import signal
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from starlette.testclient import TestClient

from crackal.active.labels import latest_prelabels
from crackal.active.store import ProjectStore, open_project
from crackal.app.server import AppSettings, create_app
from tests.app.web_helpers import make_web_project, mask_png, sign_in


def label_queue(client: TestClient, seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    count = 0
    while (image_id := client.post("/api/queue/next").json()["id"]) is not None:
        info = client.get(f"/api/images/{image_id}").json()
        mask = np.zeros((info["height"], info["width"]), np.uint8)
        row = int(rng.integers(5, info["height"] - 5))
        mask[row:row + 2, 4:-4] = 1
        assert client.post(f"/api/images/{image_id}/mask", content=mask_png(mask)).status_code == 200
        count += 1
    return count


def wait_for(client: TestClient, states: tuple[str, ...], timeout: float = 240, phase: str | None = None) -> dict:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        status = client.get("/api/worker").json()
        seen.append((status.get("state"), status.get("phase")))
        if status["state"] in states and (phase is None or phase in (status.get("phase") or "")):
            return status
        if status["state"] == "failed":
            pytest.fail(f"the worker failed: {status.get('error')}")
        time.sleep(0.2)
    pytest.fail(f"the worker did not reach {states} / {phase} in {timeout} s; seen {seen[-5:]}")


@pytest.mark.slow
def test_a_round_started_from_the_dashboard_runs_in_the_background(tmp_path):
    project = make_web_project(tmp_path / "project", count=9, size=64, initial=4, query_size=2, heldout=2)
    app = create_app(project)
    admin, ana = TestClient(app), TestClient(app)
    sign_in(admin, "root"), sign_in(ana, "ana")
    assert label_queue(ana) == 4
    status = admin.post("/api/worker/start").json()
    assert status["running"] and status["state"] in ("starting", "running")
    assert admin.post("/api/worker/start").status_code == 409  # one at a time
    assert ana.get("/api/queue").status_code == 200  # the server answers while it trains
    status = wait_for(admin, ("done",))
    assert status["round"] == 1 and status["labelled"] == 4 and status["selected"] == 2 and not status["running"]
    dashboard = admin.get("/api/dashboard").json()
    assert [(r["round"], r["state"], r["labelled"]) for r in dashboard["rounds"]] == [(1, "done", 4)]
    assert dashboard["history"]["labelled"] == [4]

    # the new queue is pre-annotated: what the editor gets is the round's model's mask
    store, config = open_project(project)
    queued = [record for record, _, _ in store.queue()]
    expected = latest_prelabels(store, config, queued)
    store.close()
    assert len(queued) == 2 and len(list((project / ".cache" / "prelabels" / "001").glob("*.png"))) == 2
    for record in queued:
        response = ana.get(f"/api/images/{record.id}/prelabel")
        assert response.headers["x-round"] == "1"
        mask = np.frombuffer(zlib.decompress(response.content), np.uint8).reshape(64, 64)
        assert np.array_equal(mask, expected[record.name])

    # the review viewer's layers, for a held-out image
    store = ProjectStore(project)
    held = store.heldout()[0]
    store.close()
    for layer, mode in (("prediction", "RGBA"), ("probability", "L"), ("uncertainty", "L"), ("truth", "RGBA")):
        response = ana.get(f"/api/review/{held.id}/{layer}")
        assert response.status_code == 200, (layer, response.text)
        with Image.open(io.BytesIO(response.content)) as img:
            assert img.size == (64, 64) and img.mode == mode
    assert ana.get(f"/api/review/{held.id}/nothing").status_code == 404


@pytest.mark.slow
def test_a_killed_worker_leaves_the_round_resumable(tmp_path):
    project = make_web_project(tmp_path / "project", count=9, size=64, initial=4, query_size=2, heldout=2)
    store = ProjectStore(project)
    store.update_settings({"train": {**store.settings()["train"], "epochs": 4}})
    store.close()
    app = create_app(project, settings=AppSettings())
    admin = TestClient(app)
    sign_in(admin, "root")
    label_queue(admin)
    admin.post("/api/worker/start")
    running = wait_for(admin, ("running",), phase="training")
    os.killpg(running["pid"], signal.SIGKILL)
    worker = app.state.ctx.worker
    worker.process.wait(10)
    status = admin.get("/api/worker").json()
    assert status["state"] == "stopped" and "start it again to resume" in status["error"]
    store = ProjectStore(project)
    assert [r["state"] for r in store.rounds()] == ["training"]
    store.close()
    assert admin.post("/api/worker/start").status_code == 200  # an interrupted round may go on
    assert wait_for(admin, ("done",))["round"] == 1
    store = ProjectStore(project)
    assert [r["state"] for r in store.rounds()] == ["done"] and len(store.queue()) == 2 and len(store.labelled()) == 4
    store.close()
    assert (project / ".worker.log").stat().st_size > 0
    assert not list(Path(project).glob(".worker.json.tmp*"))
