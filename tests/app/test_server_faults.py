"""The labelling server under faults: killed during submits (the benchmark, small), a full disk
during a submit (a real server under a file-size limit), a damaged label file at start-up."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from crackal.active.store import ProjectStore
from crackal.app.server import create_app
from tests.app.test_web_api import label_of, state_of
from tests.app.web_helpers import PASSWORDS, LiveServer, make_web_project, mask_png, sign_in

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path) -> Path:
    return make_web_project(tmp_path / "project", count=8, size=(48, 64), initial=6)


@contextmanager
def signed_in(url: str, name: str) -> Iterator:
    """An HTTP client of a live server, signed in as ``name``; closed at the end."""
    import httpx

    with httpx.Client(base_url=url, timeout=60) as client:
        response = client.post("/api/login", json={"name": name, "password": PASSWORDS[name]})
        assert response.status_code == 200, response.text
        client.headers["X-CSRF-Token"] = response.json()["csrf"]
        yield client


def checked_dashboard(client) -> dict:
    """The dashboard once the server's start-up check of the label files is done."""
    deadline = time.monotonic() + 60
    while True:
        data = client.get("/api/dashboard").json()
        if data["labels_checked"] or time.monotonic() > deadline:
            return data
        time.sleep(0.1)


@pytest.mark.slow
def test_a_server_killed_during_submits_loses_no_acknowledged_label(tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "server_faults.py"), "--kills", "3", "--out", str(tmp_path),
                          "--no-docs"], capture_output=True, text=True, timeout=600, env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"})
    assert run.returncode == 0, run.stderr[-3000:] + run.stdout[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["kills"] == 3 and result["acknowledged"] > 0 and result["in_flight_at_kills"] > 0
    assert result["lost"] == 0 and result["half_written"] == 0 and result["problems"] == []


def test_a_full_disk_answers_507_stores_nothing_and_the_next_submit_lands(project):
    """``crackal serve`` in a child process whose file-size limit (RLIMIT_FSIZE, set from here with
    prlimit; Python ignores SIGXFSZ, so a write past it fails with EFBIG) stands for a full disk:
    (the first write past it fails: SQLite's, the upload's or the label file's)."""
    server = LiveServer(project)
    try:
        with signed_in(server.url, "ana") as client:
            image_id = client.post("/api/queue/next").json()["id"]
            mask = (np.random.default_rng(0).random((48, 64)) < 0.2).astype(np.uint8)
            before = state_of(project)
            hard = resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE)[1]
            for limit in (64, 4096):  # smaller than an upload / than the database's shared-memory file
                resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE, (limit, hard))
                response = client.post(f"/api/images/{image_id}/mask", content=mask_png(mask))
                assert response.status_code == 507, (limit, response.text)
                assert "disk of the server is full" in response.json()["error"] and "nothing stored" in response.json()["error"]
                assert state_of(project) == before, limit
                assert not list((project / ".uploads").glob("*"))
            resource.prlimit(server.process.pid, resource.RLIMIT_FSIZE, (hard, hard))
            response = client.post(f"/api/images/{image_id}/mask", content=mask_png(mask))
            assert response.status_code == 200, response.text
            stored, by = label_of(project, image_id)
            assert by == "ana" and np.array_equal(stored, mask)
    finally:
        server.stop()
    assert "disk of the server is full" in server.log.read_text()


@pytest.mark.parametrize("where", ["label file", "label row"])
def test_a_full_disk_while_the_label_is_written_leaves_no_file(project, monkeypatch, where):
    """In-process: the disk fills while the label file is written (half of it lands), or SQLite
    reports a full disk when the label row is written; no file is left, the answer is 507."""
    import errno
    import sqlite3

    import crackal.active.labels

    client = TestClient(create_app(project))
    sign_in(client, "ana")
    image_id = client.post("/api/queue/next").json()["id"]
    before = state_of(project)

    def half_then_full(path, data):
        Path(path).write_bytes(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    def full(*args, **kwargs):
        error = sqlite3.OperationalError("database or disk is full")
        error.sqlite_errorcode = sqlite3.SQLITE_FULL
        raise error

    if where == "label file":
        monkeypatch.setattr(crackal.active.labels, "write_png", half_then_full)
    else:
        monkeypatch.setattr(ProjectStore, "record_labels", full)
    response = client.post(f"/api/images/{image_id}/mask", content=mask_png(np.zeros((48, 64))))
    assert response.status_code == 507 and "nothing stored" in response.json()["error"]
    assert state_of(project) == before  # no row, no file (not even a temporary one)
    monkeypatch.undo()
    assert client.post(f"/api/images/{image_id}/mask", content=mask_png(np.zeros((48, 64)))).status_code == 200


def test_a_damaged_label_file_is_reported_and_the_server_still_starts(project):
    client = TestClient(create_app(project))
    sign_in(client, "ana")
    labelled = []
    for _ in range(3):
        image_id = client.post("/api/queue/next").json()["id"]
        assert client.post(f"/api/images/{image_id}/mask", content=mask_png(np.ones((48, 64)))).status_code == 200
        labelled.append(image_id)
    store = ProjectStore(project)
    damaged, missing = (store.images("id = ?", (i,))[0] for i in labelled[:2])
    store.close()
    data = damaged.label_path.read_bytes()
    damaged.label_path.write_bytes(data[: len(data) // 2])  # a file cut short
    missing.label_path.unlink()
    (project / ".uploads").mkdir(exist_ok=True)
    (project / ".uploads" / "7-0123.png").write_bytes(b"half an upload")  # leftovers of interrupted writes
    (project / "labels" / "synth_000.tmp.png").write_bytes(b"half a label")
    server = LiveServer(project)
    try:
        with signed_in(server.url, "root") as admin, signed_in(server.url, "bob") as bob:
            report = checked_dashboard(admin)
            assert report["labels_checked"]
            found = {item["image"]: item for item in report["damaged_labels"]}
            assert set(found) == {damaged.name, missing.name}
            assert found[missing.name]["problem"] == "the file is missing"
            assert found[damaged.name]["path"] == f"labels/{damaged.label_path.name}" and found[damaged.name]["labelled_by"] == "ana"
            assert "crackal al import" in found[damaged.name]["advice"] and "crackal al restore" in found[damaged.name]["advice"]
            assert bob.post("/api/queue/next").json()["id"] is not None  # it serves
    finally:
        server.stop()
    log = server.log.read_text()
    assert f"damaged label: labels/{damaged.label_path.name}, the label of {damaged.name} (by ana" in log
    assert "removed 2 leftover files" in log
    assert not (project / ".uploads" / "7-0123.png").exists() and not (project / "labels" / "synth_000.tmp.png").exists()
