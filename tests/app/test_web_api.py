"""The labelling web app's HTTP API, through Starlette's test client: sessions, CSRF, leases,
labels written through the project's one label path, refusals that change nothing."""

from __future__ import annotations

import io
import json
import sqlite3
import sys
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from crackal.active.store import SCHEMA_VERSION, ProjectStore
from crackal.app import accounts
from crackal.app.server import AppSettings, create_app
from crackal.data.boxes import read_voc
from crackal.data.io import read_raw_mask, to_class_mask
from tests.app.web_helpers import Clock, make_web_project, mask_png, sign_in


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from crackal.data.synth import write_synthetic_dataset

    return write_synthetic_dataset(tmp_path_factory.mktemp("webdata"), count=12, size=(48, 64), seed=3)


@pytest.fixture
def project(tmp_path, data) -> Path:
    return make_web_project(tmp_path / "project", data, initial=8)


def client_of(project: Path, **settings) -> TestClient:
    return TestClient(create_app(project, settings=AppSettings(**settings)), base_url="http://testserver")


def state_of(project: Path) -> dict:
    """Everything a refused request must leave as it was: label rows, label files, the queue."""
    store = ProjectStore(project)
    try:
        return {"labels": [tuple(r) for r in store.conn.execute("SELECT * FROM labels ORDER BY id")],
                "queue": [r.id for r, _, _ in store.queue()],
                "files": sorted(p.name for p in (project / "labels").iterdir())}
    finally:
        store.close()


def label_of(project: Path, image_id: int) -> tuple[np.ndarray, str]:
    store = ProjectStore(project)
    try:
        record = store.images("id = ?", (image_id,))[0]
        return to_class_mask(read_raw_mask(record.label_path), 2, record.label_path), record.labelled_by
    finally:
        store.close()


def test_sign_in_sessions_and_sign_out(project):
    client = client_of(project)
    assert client.post("/api/login", json={"name": "ana", "password": "wrong-password"}).status_code == 401
    assert client.post("/api/login", json={"name": "nobody", "password": "whatever12"}).status_code == 401
    response = client.post("/api/login", json={"name": "ana", "password": "ana-password"})
    assert response.status_code == 200
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie and "secure" not in cookie
    me = client.get("/api/me").json()
    assert me["name"] == "ana" and me["role"] == "labeller" and me["csrf"] == response.json()["csrf"]
    assert me["class_names"] == ["background", "crack"] and me["colours"][1].startswith("#")
    assert client.get("/queue").status_code == 200
    client.headers["X-CSRF-Token"] = me["csrf"]
    assert client.post("/api/logout").status_code == 200
    assert client.get("/api/me").status_code == 401
    # the database holds a salted scrypt hash, and only a hash of the session token
    store = ProjectStore(project)
    stored = store.conn.execute("SELECT password FROM users WHERE name = 'ana'").fetchone()[0]
    assert stored.startswith("scrypt$") and "ana-password" not in stored
    other = store.conn.execute("SELECT password FROM users WHERE name = 'bob'").fetchone()[0]
    assert stored.split("$")[4] != other.split("$")[4]  # salts differ
    store.close()


def test_secure_cookies_from_the_command_line_to_the_cookie(project, monkeypatch):
    """``crackal serve --secure-cookies`` (behind an HTTPS proxy) marks the session cookie Secure."""
    import crackal.app.server
    from crackal.cli import main

    made = {}

    def run_instead(project, host, port, lease_minutes, secure_cookies=False):  # what uvicorn would serve
        made["app"] = crackal.app.server.create_app(project, lease_minutes=lease_minutes, secure_cookies=secure_cookies)

    monkeypatch.setattr(crackal.app.server, "serve", run_instead)
    assert main(["serve", str(project), "--secure-cookies"]) == 0
    client = TestClient(made["app"], base_url="https://testserver")
    response = client.post("/api/login", json={"name": "ana", "password": "ana-password"})
    assert response.status_code == 200 and "; secure" in response.headers["set-cookie"].lower()


def test_every_page_and_call_but_the_login_needs_a_session(project):
    client = client_of(project)
    for path in ("/api/me", "/api/queue", "/api/images/1", "/api/images/1/image", "/api/images/1/thumb",
                 "/api/images/1/prelabel", "/api/dashboard", "/api/worker", "/api/review", "/api/review/1/truth"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert "sign in" in response.json()["error"]
    for path in ("/api/queue/next", "/api/images/1/lease", "/api/images/1/skip", "/api/images/1/mask",
                 "/api/images/1/boxes", "/api/worker/start", "/api/logout"):
        assert client.post(path, content=b"x").status_code == 401, path
    for path in ("/queue", "/dashboard", "/review", "/label/1"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login"), path
    assert client.get("/login").status_code == 200
    assert client.get("/static/style.css").status_code == 200  # code and style, no data


def test_writes_need_the_csrf_token(project):
    client = client_of(project)
    csrf = sign_in(client, "ana")
    del client.headers["X-CSRF-Token"]
    assert client.post("/api/queue/next").status_code == 403
    assert client.post("/api/queue/next", headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert client.post("/api/queue/next", headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"}).status_code == 403
    assert client.post("/api/queue/next", headers={"X-CSRF-Token": csrf, "Origin": "http://testserver"}).status_code == 200
    other = client_of(project)
    sign_in(other, "bob")
    # a token is its own session's
    assert client.post("/api/queue/next", headers={"X-CSRF-Token": other.headers["X-CSRF-Token"]}).status_code == 403


def test_sessions_expire(project):
    clock = Clock()
    client = client_of(project, clock=clock, session_hours=2)
    sign_in(client, "ana")
    clock.advance(3600)
    assert client.get("/api/me").status_code == 200
    clock.advance(3601)
    assert client.get("/api/me").status_code == 401


def test_failed_sign_ins_are_throttled(project):
    client = client_of(project)
    for _ in range(5):
        assert client.post("/api/login", json={"name": "ana", "password": "not-it-at-all"}).status_code == 401
    assert client.post("/api/login", json={"name": "ana", "password": "ana-password"}).status_code == 429


def test_a_leased_image_is_refused_to_others_until_the_lease_ends(project):
    clock = Clock()
    app = create_app(project, settings=AppSettings(clock=clock, lease_minutes=10))
    ana, bob, root = (TestClient(app) for _ in range(3))
    sign_in(ana, "ana"), sign_in(bob, "bob"), sign_in(root, "root")
    first = ana.post("/api/queue/next").json()["id"]
    assert ana.post(f"/api/images/{first}/lease").status_code == 200  # a renewal
    response = bob.post(f"/api/images/{first}/lease")
    assert response.status_code == 409 and response.json()["leased_by"] == "ana"
    assert "leased to ana" in response.json()["error"]
    assert bob.post(f"/api/images/{first}/mask", content=mask_png(np.zeros((48, 64)))).status_code == 409
    assert bob.delete(f"/api/images/{first}/lease").status_code == 409  # not his
    assert bob.post("/api/queue/next").json()["id"] != first  # the next free one
    queue = ana.get("/api/queue").json()["items"]
    assert {i["id"]: i["leased_by"] for i in queue}[first] == "ana"
    clock.advance(11 * 60)  # the lease ran out
    assert bob.post(f"/api/images/{first}/lease").status_code == 200
    assert ana.post(f"/api/images/{first}/mask", content=mask_png(np.zeros((48, 64)))).status_code == 409
    assert root.delete(f"/api/images/{first}/lease").status_code == 200  # an admin releases anyone's
    assert ana.post(f"/api/images/{first}/lease").status_code == 200


def test_a_submitted_mask_is_stored_exactly_as_painted(project):
    client = client_of(project)
    sign_in(client, "ana")
    before = state_of(project)
    image_id = client.post("/api/queue/next").json()["id"]
    info = client.get(f"/api/images/{image_id}").json()
    assert (info["width"], info["height"]) == (64, 48) and info["queued"] and info["lease"]["mine"]
    prelabel = client.get(f"/api/images/{image_id}/prelabel")  # before any round: empty
    assert prelabel.headers["x-width"] == "64" and prelabel.headers["x-round"] == ""
    assert not np.frombuffer(zlib.decompress(prelabel.content), np.uint8).any()
    mask = np.zeros((48, 64), np.uint8)
    mask[10, 3:40] = 1
    mask[11:20, 50] = 1
    mask[47, 63] = 1
    response = client.post(f"/api/images/{image_id}/mask", content=mask_png(mask), headers={"Content-Type": "image/png"})
    assert response.status_code == 200, response.text
    assert response.json()["defect_pixels"] == int(mask.sum())
    stored, by = label_of(project, image_id)
    assert by == "ana" and np.array_equal(stored, mask)
    after = state_of(project)
    assert after["queue"] == [i for i in before["queue"] if i != image_id]
    assert len(after["labels"]) == len(before["labels"]) + 1
    assert not (project / ".uploads").exists() or not any((project / ".uploads").iterdir())
    assert client.get(f"/api/images/{image_id}").json()["lease"] is None
    # the image is done: a second submit is refused
    again = client.post(f"/api/images/{image_id}/mask", content=mask_png(mask))
    assert again.status_code == 409 and "not in the labelling queue" in again.json()["error"]


def test_multi_class_masks_keep_their_classes(tmp_path):
    project = make_web_project(tmp_path / "multi", count=6, size=32, classes=["background", "crack", "pothole"], initial=3,
                               heldout=1)
    client = client_of(project)
    sign_in(client, "ana")
    assert client.get("/api/me").json()["class_names"] == ["background", "crack", "pothole"]
    image_id = client.post("/api/queue/next").json()["id"]
    mask = np.zeros((32, 32), np.uint8)
    mask[2:5, 2:30] = 1
    mask[20:28, 10:20] = 2
    assert client.post(f"/api/images/{image_id}/mask", content=mask_png(mask)).status_code == 200
    store = ProjectStore(project)
    path = store.images("id = ?", (image_id,))[0].label_path
    store.close()
    assert np.array_equal(read_raw_mask(path), mask)


def test_invalid_masks_change_nothing(project):
    client = client_of(project)
    sign_in(client, "ana")
    image_id = client.post("/api/queue/next").json()["id"]
    before = state_of(project)
    colour = np.zeros((48, 64, 3), np.uint8)
    colour[5, 5] = [255, 0, 0]
    cases = {
        "wrong size": (mask_png(np.zeros((64, 48))), "mask is 48x64 but image"),
        "wrong values": (mask_png(np.full((48, 64), 7)), "unexpected mask values"),
        "colour": (mask_png(colour), "colour mask"),
        "not an image": (b"this is not a PNG at all", "not an image"),
        "empty": (b"", "no mask"),
    }
    for case, (body, message) in cases.items():
        response = client.post(f"/api/images/{image_id}/mask", content=body)
        assert response.status_code == 400, case
        error = response.json()["error"]
        assert message in error, (case, error)
        assert ".uploads" not in error and str(project) not in error, error  # no server path in the message
        assert state_of(project) == before, case
    boxes = client.post(f"/api/images/{image_id}/boxes", json={"boxes": []})
    assert boxes.status_code == 400 and "segmentation project" in boxes.json()["error"]
    assert state_of(project) == before
    assert client.post(f"/api/images/{image_id}/mask", content=mask_png(np.zeros((48, 64)))).status_code == 200


def test_no_file_outside_the_project_is_named_or_read(project, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    client = client_of(project)
    sign_in(client, "ana")
    client.get("/api/images/1/image")  # imports and caches done before watching
    opened: list[str] = []
    watching = threading.Event()

    def audit(event, args):
        if watching.is_set() and event == "open" and isinstance(args[0], (str, bytes, Path)):
            opened.append(str(args[0]))

    sys.addaudithook(audit)
    attempts = ["/api/images/..%2F..%2Fsecret.txt/image", "/api/images/1%2F..%2F..%2Fsecret.txt", "/api/images/-1/image",
                "/api/images/999999/image", "/api/images/1.5/image", "/static/..%2F..%2Fproject.db",
                "/static/%2e%2e%2fserver.py", "/static/..%2F..%2F..%2Fsecret.txt", "/api/review/1/..%2F..%2Fsecret.txt",
                "/api/review/1/%2e%2e", "/label/..%2F..%2Fsecret.txt",
                "/static/%2Fetc%2Fpasswd", "/api/review/999999/truth"]
    watching.set()
    try:
        for path in attempts:
            response = client.get(path)
            assert response.status_code == 404, path
            assert b"TOP SECRET" not in response.content and b"root:" not in response.content
    finally:
        watching.clear()
    response = client.get(f"/api/images/1/image?path={secret}")  # a query is no way to name a file either
    assert response.status_code == 200 and b"TOP SECRET" not in response.content
    allowed = [str(project.resolve()), str(Path(sys.prefix).resolve()), str(Path(sys.base_prefix).resolve()),
               str(Path(__file__).resolve().parents[2] / "crackal")]
    outside = [p for p in opened if not any(str(Path(p).resolve()).startswith(a) for a in allowed)]
    assert not outside, outside


def test_a_request_over_the_size_limit_gets_413(project):
    client = client_of(project, max_upload_bytes=600)
    sign_in(client, "ana")
    image_id = client.post("/api/queue/next").json()["id"]
    before = state_of(project)
    noise = np.random.default_rng(0).integers(0, 2, (48, 64))
    body = mask_png(noise)
    assert len(body) > 600
    response = client.post(f"/api/images/{image_id}/mask", content=body)
    assert response.status_code == 413 and "limit of 600 bytes" in response.json()["error"]

    def chunks():  # no Content-Length: counted as it arrives
        for start in range(0, len(body), 200):
            yield body[start:start + 200]

    assert client.post(f"/api/images/{image_id}/mask", content=chunks()).status_code == 413
    assert state_of(project) == before
    assert client.post(f"/api/images/{image_id}/mask", content=mask_png(np.zeros((48, 64)))).status_code == 200


def test_two_labellers_submitting_at_once_both_land(project):
    app = create_app(project)
    clients = {name: TestClient(app) for name in ("ana", "bob")}
    for name, client in clients.items():
        sign_in(client, name)
    rng = np.random.default_rng(1)
    painted: dict[int, tuple[str, np.ndarray]] = {}
    start = threading.Barrier(2)

    def label(name: str) -> None:
        client = clients[name]
        start.wait()
        for _ in range(4):
            image_id = client.post("/api/queue/next").json()["id"]
            mask = (rng.random((48, 64)) < 0.1).astype(np.uint8)
            response = client.post(f"/api/images/{image_id}/mask", content=mask_png(mask))
            assert response.status_code == 200, response.text
            painted[image_id] = (name, mask)

    with ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(label, name) for name in clients]:
            future.result()
    assert len(painted) == 8
    for image_id, (name, mask) in painted.items():
        stored, by = label_of(project, image_id)
        assert by == name and np.array_equal(stored, mask)
    assert state_of(project)["queue"] == []
    assert clients["ana"].post("/api/queue/next").json() == {"id": None, "message": "the queue is empty: every selected image is labelled"}


def test_skip_puts_an_image_aside(project):
    client = client_of(project)
    sign_in(client, "ana")
    first = client.post("/api/queue/next").json()["id"]
    assert client.post("/api/queue/next").json()["id"] == first  # still hers
    assert client.post(f"/api/images/{first}/skip").status_code == 200
    second = client.post("/api/queue/next").json()["id"]
    assert second != first
    assert {i["id"]: i["skipped"] for i in client.get("/api/queue").json()["items"]}[first]


def test_boxes_are_stored_as_voc(tmp_path):
    project = make_web_project(tmp_path / "boxes", count=5, size=48, task="detection", initial=3, heldout=1)
    client = client_of(project)
    sign_in(client, "ana")
    assert client.get("/api/me").json()["task"] == "detection"
    image_id = client.post("/api/queue/next").json()["id"]
    assert client.get(f"/api/images/{image_id}/prelabel").json() == {"round": None, "boxes": []}
    before = state_of(project)
    bad = [{"boxes": [{"x0": 60, "y0": 60, "x1": 70, "y1": 70, "label": 1}]},  # outside the 48x48 image
           {"boxes": [{"x0": 5, "y0": 5, "x1": 5, "y1": 9, "label": 1}]},  # no area
           {"boxes": [{"x0": 1, "y0": 1, "x1": 9, "y1": 9, "label": 3}]},  # no such class
           {"boxes": [{"x0": "a", "y0": 1, "x1": 9, "y1": 9}]},
           {"boxes": "none"}]
    for body in bad:
        response = client.post(f"/api/images/{image_id}/boxes", json=body)
        assert response.status_code == 400, body
        assert state_of(project) == before
    response = client.post(f"/api/images/{image_id}/boxes", json={"boxes": [
        {"x0": 3, "y0": 4, "x1": 20, "y1": 10, "label": 1}, {"x0": 30, "y0": 30, "x1": 60, "y1": 47, "label": "crack"}]})
    assert response.status_code == 200, response.text
    store = ProjectStore(project)
    record = store.images("id = ?", (image_id,))[0]
    store.close()
    boxes = read_voc(record.label_path, ["background", "crack"])
    assert boxes.boxes.tolist() == [[3, 4, 20, 10], [30, 30, 48, 47]] and boxes.labels.tolist() == [1, 1]
    assert record.labelled_by == "ana"


def test_users_are_checked_and_a_new_password_signs_out(project):
    store = ProjectStore(project)
    try:
        with pytest.raises(Exception, match="exists"):
            accounts.add_user(store, "ana", "another-password")
        with pytest.raises(Exception, match="at least 8"):
            accounts.add_user(store, "carl", "short")
        with pytest.raises(Exception, match="role"):
            accounts.add_user(store, "carl", "long-enough", role="boss")
        with pytest.raises(Exception, match="letters"):
            accounts.add_user(store, "../etc", "long-enough")
        client = client_of(project)
        sign_in(client, "ana")
        accounts.add_user(store, "ana", "a-new-password", replace=True)
        assert client.get("/api/me").status_code == 401
        assert [u.name for u in accounts.list_users(store)] == ["ana", "bob", "root"]
    finally:
        store.close()


def test_a_version_2_project_gains_the_app_tables(project):
    db = sqlite3.connect(project / "project.db")
    for table in ("users", "sessions", "leases", "stop_set", "label_effort", "login_failures"):
        db.execute(f"DROP TABLE {table}")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    ProjectStore(project).close()
    db = sqlite3.connect(project / "project.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 6
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    db.close()
    assert {"users", "sessions", "leases", "stop_set", "label_effort", "login_failures", "labels", "images"} <= tables


def test_the_dashboard_reports_rounds_labellers_cost_and_stopping(project):
    store = ProjectStore(project)
    ids = [r.id for r, _, _ in store.queue()]
    for round_, f1 in enumerate((0.30, 0.45, 0.451, 0.452), start=1):
        store.start_round(round_, 6)
        store.update_round(round_, checkpoint=str(project / "none.pt"), metrics={
            "strict": {"f1": f1, "precision": f1 + 0.1, "recall": f1 - 0.1}, "tol2": {"f1": f1 + 0.2}, "loss": 1 - f1})
        store.finish_round(round_, {}, [], [], 0.1 / round_)
    store.close()
    client = client_of(project)
    sign_in(client, "ana")
    for image_id in ids[:3]:
        assert client.post(f"/api/images/{image_id}/lease").status_code == 200
        assert client.post(f"/api/images/{image_id}/mask", content=mask_png(np.zeros((48, 64)))).status_code == 200
    data = client.get("/api/dashboard").json()
    assert [r["round"] for r in data["rounds"]] == [1, 2, 3, 4]
    assert [r["score"] for r in data["rounds"]] == [0.30, 0.45, 0.451, 0.452]
    assert data["labellers"] == [{"name": "ana", "current": 3, "all": 3}]
    assert data["cost"]["spent"] == 1.5 and data["counts"]["labelled"] == 3 and data["counts"]["pool"] == 10
    assert data["cost"]["saving"] == "projected" and data["cost"]["saving_text"].startswith("projection")  # not "saved"
    assert data["stopping"]["text"].startswith("held-out F1 flat for 2 rounds") and "consider stopping" in data["stopping"]["text"]
    assert data["admin"] is False and data["worker"]["state"] == "idle"


def test_only_an_admin_starts_a_round_and_only_once_the_queue_is_labelled(project):
    client, admin = client_of(project), client_of(project)
    sign_in(client, "ana"), sign_in(admin, "root")
    assert client.post("/api/worker/start").status_code == 403
    response = admin.post("/api/worker/start")
    assert response.status_code == 409 and "8 queued images still wait for labels" in response.json()["error"]


def test_static_files_come_from_a_fixed_list(project):
    client = client_of(project)
    assert client.get("/static/editor.js").status_code == 200
    assert client.get("/static/nothing.js").status_code == 404
    response = client.get("/login")
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"


def test_worker_status_survives_a_restart_of_the_server(project):
    from crackal.app.worker import write_status

    write_status(project, {"state": "running", "pid": 2**22 + 12345, "phase": "training 001"})  # a dead pid
    client = client_of(project)
    sign_in(client, "root")
    status = client.get("/api/worker").json()
    assert status["state"] == "stopped" and "start it again to resume" in status["error"] and not status["running"]
    assert json.loads((project / ".worker.json").read_text())["state"] == "running"  # the report is kept as written


def test_images_and_thumbnails_are_served_as_crackal_reads_them(tmp_path):
    from PIL import Image

    from crackal.data.io import read_image

    project = make_web_project(tmp_path / "p", count=5, size=(40, 300), initial=4, heldout=1)
    store = ProjectStore(project)
    png, tiff = store.queue()[0][0], store.queue()[1][0]
    wide = np.asarray(Image.open(tiff.path).convert("RGB")).astype(np.uint16) * 257  # a 16-bit TIFF instead of a PNG
    Image.fromarray(wide[:, :, 0]).save(tmp_path / "grey16.tif")
    store.conn.execute("UPDATE images SET path = ? WHERE id = ?", (str(tmp_path / "grey16.tif"), tiff.id))
    store.close()
    client = client_of(project)
    sign_in(client, "ana")
    direct = client.get(f"/api/images/{png.id}/image")
    assert direct.headers["content-type"] == "image/png" and direct.content == png.path.read_bytes()  # the file itself
    converted = client.get(f"/api/images/{tiff.id}/image")
    assert converted.headers["content-type"] == "image/png"
    decoded = np.asarray(Image.open(io.BytesIO(converted.content)))
    assert np.array_equal(decoded, read_image(tmp_path / "grey16.tif"))  # what the model sees
    thumb = client.get(f"/api/images/{png.id}/thumb")
    assert thumb.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(thumb.content)).size == (160, 21)


def test_refusals_speak_the_web_pages_language(project):
    client = client_of(project)
    csrf = sign_in(client, "ana")
    other = client.post("/api/queue/next", headers={"X-CSRF-Token": csrf, "Origin": "http://evil.example"})
    assert other.status_code == 403 and "cross-site request refused" in other.json()["error"]
    assert "CSRF" not in other.json()["error"]
    wrong = client.post("/api/queue/next", headers={"X-CSRF-Token": "nope"})
    assert wrong.status_code == 403 and "CSRF token" in wrong.json()["error"]
    for path, method in (("/api/no-such-call", "GET"), ("/no/such/page", "GET"), ("/api/queue/next", "GET")):
        response = client.request(method, path)
        assert response.status_code in (404, 405) and response.headers["content-type"] == "application/json", path
        assert response.json()["error"], path
    image_id = client.post("/api/queue/next").json()["id"]
    for body in (mask_png(np.full((48, 64), 7)), b"this is not a PNG at all"):
        error = client.post(f"/api/images/{image_id}/mask", content=body).json()["error"]
        assert "--" not in error and "pass" not in error, error  # no command-line advice on a web page
        assert "send a PNG of class indices 0..1" in error and "nothing stored" in error
