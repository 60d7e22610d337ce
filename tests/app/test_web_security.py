"""Who may do what in the labelling app: the sign-in throttle across restarts, sessions an admin
lists and ends, every admin-only route refused to a labeller, every lease-needing write refused
to another user."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from crackal.active.store import ProjectStore
from crackal.app import accounts, throttle
from crackal.app.server import AppSettings, create_app
from crackal.cli import main
from tests.app.web_helpers import Clock, make_web_project, mask_png, sign_in


@pytest.fixture
def project(tmp_path) -> Path:
    return make_web_project(tmp_path / "project", count=8, size=(48, 64), initial=6)


def wrong(client) -> int:
    return client.post("/api/login", json={"name": "ana", "password": "not-it-at-all"}).status_code


def test_the_sign_in_throttle_survives_a_restart_and_ends_with_its_window(project):
    clock = Clock()
    client = TestClient(create_app(project, settings=AppSettings(clock=clock)))
    assert [wrong(client) for _ in range(throttle.LIMIT)] == [401] * throttle.LIMIT
    restarted = TestClient(create_app(project, settings=AppSettings(clock=clock)))  # a new server, same project
    response = restarted.post("/api/login", json={"name": "ana", "password": "ana-password"})
    assert response.status_code == 429 and "wait 5 minutes" in response.json()["error"]
    sign_in(restarted, "bob")  # another name is not held back
    clock.advance(throttle.WINDOW + 1)
    sign_in(restarted, "ana")
    store = ProjectStore(project)
    try:
        assert store.conn.execute("SELECT COUNT(*) FROM login_failures WHERE name = 'ana'").fetchone()[0] == 0
    finally:
        store.close()


def test_a_burst_of_sign_ins_gets_no_more_tries_than_the_limit(project):
    app = create_app(project)
    with ThreadPoolExecutor(4) as pool:
        codes = list(pool.map(lambda _: wrong(TestClient(app)), range(12)))
    assert codes.count(401) == throttle.LIMIT and codes.count(429) == 12 - throttle.LIMIT


def test_an_admin_lists_and_ends_sessions_without_seeing_a_token(project):
    app = create_app(project)
    root, ana, ana2, bob = (TestClient(app) for _ in range(4))
    sign_in(root, "root"), sign_in(ana, "ana"), sign_in(ana2, "ana"), sign_in(bob, "bob")
    assert ana.get("/api/sessions").status_code == 403
    listed = root.get("/api/sessions")
    assert listed.status_code == 200
    sessions = listed.json()["sessions"]
    assert sorted(s["user"] for s in sessions) == ["ana", "ana", "bob", "root"]
    assert {"id", "user", "role", "created_at", "expires_at"} == set(sessions[0])
    for client in (root, ana, ana2, bob):  # neither a token nor its stored hash is shown
        token = client.cookies.get("crackal_session")
        assert token not in listed.text and hashlib.sha256(token.encode()).hexdigest() not in listed.text
    current = listed.json()["current"]
    assert {s["id"]: s["user"] for s in sessions}[current] == "root"
    ana_ids = [s["id"] for s in sessions if s["user"] == "ana"]
    assert root.delete(f"/api/sessions/{ana_ids[0]}").status_code == 200
    assert [c.get("/api/me").status_code for c in (ana, ana2)].count(401) == 1
    assert root.delete(f"/api/sessions/{ana_ids[0]}").status_code == 404
    assert bob.delete(f"/api/sessions/{ana_ids[1]}").status_code == 403
    # a new password ends every session of its user
    store = ProjectStore(project)
    try:
        accounts.add_user(store, "bob", "a-new-password", replace=True)
    finally:
        store.close()
    assert bob.get("/api/me").status_code == 401
    assert "bob" not in [s["user"] for s in root.get("/api/sessions").json()["sessions"]]


def test_sessions_are_listed_and_ended_from_the_command_line(project, capsys):
    client = TestClient(create_app(project))
    sign_in(client, "ana")
    assert main(["serve", str(project), "--list-sessions"]) == 0
    out = capsys.readouterr().out
    assert "ana" in out and client.cookies.get("crackal_session") not in out
    assert main(["serve", str(project), "--revoke-sessions", "ana", "--list-sessions"]) == 0
    assert "ended 1 session of ana" in capsys.readouterr().out
    assert client.get("/api/me").status_code == 401
    assert main(["serve", str(project), "--revoke-sessions", "nobody"]) == 1
    assert "neither a user" in capsys.readouterr().err


def routes(app) -> list[tuple[str, str, object]]:
    """(path, method, endpoint) of every route of the app."""
    return [(route.path, method, route.endpoint) for route in app.routes for method in sorted(route.methods - {"HEAD"})]


def test_every_admin_only_route_refuses_a_labeller(project):
    app = create_app(project)
    labeller, admin = TestClient(app), TestClient(app)
    sign_in(labeller, "ana"), sign_in(admin, "root")
    admin_only = [(path, method) for path, method, view in routes(app) if getattr(view, "admin", False)]
    assert {("/api/worker/start", "POST"), ("/api/sessions", "GET"), ("/api/sessions/{session_id}", "DELETE")} <= set(admin_only)
    for path, method in admin_only:
        url = path.replace("{session_id}", "0123456789abcdef").replace("{image_id:int}", "1")
        response = labeller.request(method, url)
        assert response.status_code == 403 and response.json()["error"] == "only an admin can do this", (method, path)
        assert admin.request(method, url).status_code != 403, (method, path)
    # every other route that needs a session serves a labeller (no 403 for being one)
    for path, method, view in routes(app):
        if getattr(view, "session", False) and not getattr(view, "admin", True) and method == "GET":
            response = labeller.request(method, path.replace("{image_id:int}", "1").replace("{layer}", "truth"))
            assert response.status_code != 403, (method, path)


# the body of a request to each write on one image (a valid one: only the lease is wrong)
IMAGE_WRITES = {
    ("/lease", "POST"): {},
    ("/lease", "DELETE"): {},
    ("/skip", "POST"): {},
    ("/mask", "POST"): {"content": mask_png(np.zeros((48, 64)))},
    ("/boxes", "POST"): {"json": {"boxes": []}},
    ("/trace", "POST"): {"json": {"points": [[5, 5], [20, 9]]}},
    ("/fill", "POST"): {"json": {"x": 5, "y": 5}},
}


def test_every_write_on_an_image_refuses_another_users_lease(project):
    app = create_app(project)
    ana, bob = TestClient(app), TestClient(app)
    sign_in(ana, "ana"), sign_in(bob, "bob")
    image_id = ana.post("/api/queue/next").json()["id"]
    prefix = "/api/images/{image_id:int}"
    writes = [(path[len(prefix):], method) for path, method, view in routes(app)
              if path.startswith(prefix + "/") and getattr(view, "write", False)]
    assert sorted(writes) == sorted(IMAGE_WRITES), "a new write on an image: add it to IMAGE_WRITES"
    for (suffix, method), body in IMAGE_WRITES.items():
        response = bob.request(method, f"/api/images/{image_id}{suffix}", **body)
        assert response.status_code == 409, (method, suffix, response.text)
        assert "leased to ana" in response.json()["error"] or "not leased to you" in response.json()["error"], (method, suffix)
    assert ana.get(f"/api/images/{image_id}").json()["lease"]["user"] == "ana"  # still hers
    assert ana.post(f"/api/images/{image_id}/mask", content=mask_png(np.zeros((48, 64)))).status_code == 200
