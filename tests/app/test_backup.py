"""``crackal al backup`` / ``restore``: a backup taken while a server takes submits restores at a
new path, where labelling goes on; refusals and checks."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

import crackal
from crackal.active.store import ProjectStore
from crackal.app.server import create_app
from crackal.cli import main
from tests.app.test_server_faults import signed_in
from tests.app.test_web_api import label_of
from tests.app.web_helpers import LiveServer, make_web_project, mask_png, sign_in


def said(capsys) -> str:
    """What the command printed, its lines joined (the console wraps them)."""
    captured = capsys.readouterr()
    return " ".join((captured.out + captured.err).split())


def labels_of(project: Path) -> dict[str, tuple[str, str, bytes]]:
    """Image name -> (label path, labeller, the label file's bytes) of every label row."""
    store = ProjectStore(project)
    try:
        rows = store.conn.execute("SELECT images.name, labels.path, labels.labelled_by FROM labels "
                                  "JOIN images ON images.id = labels.image_id ORDER BY labels.id").fetchall()
        return {name: (path, by, (project / path).read_bytes()) for name, path, by in rows}
    finally:
        store.close()


@pytest.mark.slow  # two servers: 30-50 s on a shared machine
def test_a_backup_taken_while_labellers_submit_restores_elsewhere_and_labelling_goes_on(tmp_path, capsys):
    project = make_web_project(tmp_path / "project", count=14, size=(48, 64), initial=12)
    server = LiveServer(project)
    acknowledged: list[int] = []
    stop = threading.Event()

    def label() -> None:
        with signed_in(server.url, "ana") as client:
            rng = np.random.default_rng(0)
            while not stop.is_set():
                image_id = client.post("/api/queue/next").json()["id"]
                if image_id is None:
                    return
                mask = (rng.random((48, 64)) < 0.2).astype(np.uint8)
                assert client.post(f"/api/images/{image_id}/mask", content=mask_png(mask)).status_code == 200
                acknowledged.append(image_id)

    thread = threading.Thread(target=label)
    try:
        thread.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        before = set(acknowledged)
        assert main(["al", "backup", str(project), str(tmp_path / "backup")]) == 0
        after = set(acknowledged)
        assert "backed up" in said(capsys)
    finally:
        stop.set()
        thread.join(60)
        server.stop()
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    store = ProjectStore(project)
    ids = {r.name: r.id for r in store.images()}
    store.close()
    originals = labels_of(project)
    backed_up = {name for name in originals if (tmp_path / "backup" / originals[name][0]).exists()}
    assert manifest["counts"]["labels"] == len(backed_up) and before <= {ids[n] for n in backed_up} <= after
    assert not list(tmp_path.glob(".backup.partial-*"))
    # restored onto a new path, the original moved away: the restored project reads its own files
    restored = tmp_path / "elsewhere" / "restored"
    assert main(["al", "restore", str(tmp_path / "backup"), str(restored)]) == 0
    assert "restored" in said(capsys)
    shutil.move(project, tmp_path / "moved")
    restored_labels = labels_of(restored)
    assert set(restored_labels) == backed_up
    for name, (path, by, data) in restored_labels.items():
        assert (path, by, data) == originals[name]
    server = LiveServer(restored)
    try:
        with signed_in(server.url, "bob") as client:  # sessions are not restored: everyone signs in again
            image_id = client.post("/api/queue/next").json()["id"]
            assert image_id is not None and image_id not in {ids[n] for n in backed_up}
            mask = np.zeros((48, 64), np.uint8)
            mask[10:20, 5:40] = 1
            assert client.post(f"/api/images/{image_id}/mask", content=mask_png(mask)).status_code == 200
    finally:
        server.stop()
    stored, by = label_of(restored, image_id)
    assert by == "bob" and np.array_equal(stored, mask)
    assert set(labels_of(restored)) == backed_up | {next(n for n, i in ids.items() if i == image_id)}


def test_restore_checks_the_backup_and_refuses_to_overwrite(tmp_path, capsys):
    project = make_web_project(tmp_path / "project", count=6, size=(48, 64), initial=3)
    client = TestClient(create_app(project))
    sign_in(client, "ana")
    image_id = client.post("/api/queue/next").json()["id"]
    assert client.post(f"/api/images/{image_id}/mask", content=mask_png(np.ones((48, 64)))).status_code == 200
    manifest = crackal.al_backup(project, tmp_path / "backup")
    assert manifest["counts"]["labels"] == 1 and len(manifest["outside"]) == 6 + 2  # the images, the held-out masks
    assert main(["al", "backup", str(project), str(tmp_path / "backup")]) == 1
    assert "never written over" in said(capsys)
    # an existing project is replaced only with --force
    assert main(["al", "restore", str(tmp_path / "backup"), str(project)]) == 1
    assert "pass --force" in said(capsys)
    assert main(["al", "restore", str(tmp_path / "backup"), str(project), "--force"]) == 0
    assert label_of(project, image_id)[1] == "ana"
    assert not [p for p in tmp_path.iterdir() if ".replaced-" in p.name or ".restoring-" in p.name]
    # images outside the project that this machine lacks are named
    shutil.move(tmp_path / "project-data", tmp_path / "data-elsewhere")
    result = crackal.al_restore(tmp_path / "backup", tmp_path / "second")
    assert len(result["missing_images"]) == len(manifest["outside"])
    assert main(["al", "restore", str(tmp_path / "backup"), str(tmp_path / "third")]) == 0
    assert "not at their recorded paths" in said(capsys)
    # a damaged backup restores nothing
    label = next(name for name in manifest["files"] if name.startswith("labels/"))
    (tmp_path / "backup" / label).write_bytes(b"not the label")
    assert main(["al", "restore", str(tmp_path / "backup"), str(tmp_path / "fourth")]) == 1
    assert f"{label} (differs from its checksum)" in said(capsys)
    assert not (tmp_path / "fourth").exists()
    assert main(["al", "restore", str(tmp_path / "moved-nowhere"), str(tmp_path / "fifth")]) == 1
    assert "not a crackal backup" in said(capsys)
