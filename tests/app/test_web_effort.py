"""Labelling time measured by the editor: stored with the label (a restart keeps it), checked
(a bad figure is refused and changes nothing), summarised on the dashboard, in ``/api/effort``,
``al status --json`` and ``al report``, whose cost figures use the measured median once ten
labels are timed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from starlette.testclient import TestClient

from crackal.active.effort import MIN_MEASURED
from crackal.active.store import ProjectStore
from crackal.app.server import AppSettings, create_app
from tests.app.web_helpers import make_web_project, mask_png, sign_in

EMPTY = mask_png(np.zeros((32, 32), np.uint8))


@pytest.fixture
def project(tmp_path):
    return make_web_project(tmp_path / "project", count=16, size=32, initial=13, heldout=2)


def client_of(project) -> TestClient:
    return TestClient(create_app(project, settings=AppSettings()), base_url="http://testserver")


def effort(seconds: float, **extra) -> dict:
    return {"X-Label-Effort": json.dumps({"active_seconds": seconds, "strokes": 3, "undos": 1, "prelabel": "none", **extra})}


def label_next(client, seconds: float | None, **extra):
    image_id = client.post("/api/queue/next").json()["id"]
    headers = {} if seconds is None else effort(seconds, **extra)
    return image_id, client.post(f"/api/images/{image_id}/mask", content=EMPTY, headers=headers)


def test_the_measured_effort_is_stored_with_the_label_and_kept_over_a_restart(project):
    client = client_of(project)
    sign_in(client, "ana")
    image_id, response = label_next(client, 41.5, strokes=7, undos=2, prelabel="edited")
    assert response.status_code == 200, response.text
    _, unmeasured = label_next(client, None)  # a script's upload has no effort: stored, not timed
    assert unmeasured.status_code == 200
    restarted = client_of(project)  # a new app on the same project: what the server knew came from the database
    sign_in(restarted, "root")
    data = restarted.get("/api/effort").json()
    assert data["measured"] == 1 and data["median_seconds"] == 41.5
    assert data["labels"][0]["image_id"] == image_id and data["labels"][0]["labelled_by"] == "ana"
    assert (data["labels"][0]["strokes"], data["labels"][0]["undos"], data["labels"][0]["prelabel"]) == (7, 2, "edited")
    assert data["labellers"] == [{"name": "ana", "measured": 1, "median_seconds": 41.5}]
    store = ProjectStore(project)
    history = store.label_history(image_id)
    store.close()
    assert history[-1]["active_seconds"] == 41.5 and history[-1]["labelled_by"] == "ana"


@pytest.mark.parametrize(("header", "message"), [
    ('{"active_seconds": -3}', "outside 0..14400"),
    ('{"active_seconds": 86400}', "outside 0..14400"),
    ('{"active_seconds": "NaN"}', "must be a number"),
    ('{"active_seconds": 10, "strokes": 2.5}', "strokes must be a whole number"),
    ('{"active_seconds": 10, "undos": -1}', "undos must be a whole number"),
    ('{"active_seconds": 10, "prelabel": "ignored"}', "prelabel must be one of"),
    ("[10]", "must be a JSON object"),
    ("ten seconds", "not JSON"),
])
def test_a_bad_effort_is_refused_with_a_4xx_and_changes_nothing(project, header, message):
    client = client_of(project)
    sign_in(client, "ana")
    image_id = client.post("/api/queue/next").json()["id"]
    response = client.post(f"/api/images/{image_id}/mask", content=EMPTY, headers={"X-Label-Effort": header})
    assert response.status_code == 400 and message in response.json()["error"], response.text
    assert "nothing stored" in response.json()["error"]
    store = ProjectStore(project)
    assert not store.labelled() and not store.label_efforts()
    store.close()


def test_an_effort_for_another_users_lease_or_an_unknown_image_is_refused(project):
    ana, bob = client_of(project), client_of(project)
    sign_in(ana, "ana"), sign_in(bob, "bob")
    image_id = ana.post("/api/queue/next").json()["id"]
    stolen = bob.post(f"/api/images/{image_id}/mask", content=EMPTY, headers=effort(5))
    assert stolen.status_code == 409 and "leased to ana" in stolen.json()["error"]
    assert bob.post("/api/images/99999/mask", content=EMPTY, headers=effort(5)).status_code == 404
    store = ProjectStore(project)
    assert not store.label_efforts() and not store.labelled()
    store.close()


def test_the_cost_uses_the_measured_median_once_enough_labels_are_timed(project):
    client = client_of(project)
    sign_in(client, "ana")
    times = [20.0 + 2 * i for i in range(MIN_MEASURED)]
    for seconds in times[:-1]:
        assert label_next(client, seconds)[1].status_code == 200
    cost = client.get("/api/dashboard").json()["cost"]
    assert cost["seconds_per_image"] == 30.0 and cost["seconds_source"].startswith("estimate")
    assert f"{MIN_MEASURED - 1} of the {MIN_MEASURED} measured labels" in cost["seconds_source"]
    assert label_next(client, times[-1])[1].status_code == 200
    data = client.get("/api/dashboard").json()
    assert data["cost"]["seconds_per_image"] == float(np.median(times)) == 29.0
    assert data["cost"]["seconds_source"].startswith(f"measured: median of {MIN_MEASURED} labels")
    assert data["cost"]["hours_spent"] == round(MIN_MEASURED * 29.0 / 3600, 2)
    assert data["effort"]["measured"] == MIN_MEASURED and data["effort"]["rounds"][0]["median_seconds"] == 29.0


def test_no_saving_is_shown_before_there_is_a_basis_for_it(project):
    client = client_of(project)
    sign_in(client, "ana")
    label_next(client, 12)
    cost = client.get("/api/dashboard").json()["cost"]
    assert cost["saving"] == "none" and cost["saved"] is None and "not enough rounds" in cost["saving_text"]
    store = ProjectStore(project)
    for round_, (labelled, f1) in enumerate(((4, 0.30), (6, 0.40), (8, 0.45), (10, 0.47)), start=1):
        store.start_round(round_, labelled)
        store.update_round(round_, checkpoint="none.pt", metrics={"strict": {"f1": f1, "precision": f1, "recall": f1}})
        store.finish_round(round_, {}, [], [], 0.1)
    store.close()
    cost = client.get("/api/dashboard").json()["cost"]
    assert cost["saving"] == "projected" and cost["saving_text"].startswith("projection")
    assert cost["saved"] is not None and cost["saved"] <= (14 - 1) * 0.5


def test_status_json_and_the_report_name_their_time_source(project, tmp_path):
    from typer.testing import CliRunner

    from crackal import api
    from crackal.cli import app

    client = client_of(project)
    sign_in(client, "ana")
    for seconds in range(10, 10 + 2 * MIN_MEASURED, 2):
        label_next(client, float(seconds))
    result = CliRunner().invoke(app, ["al", "status", str(project), "--json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert status["labelled"] == MIN_MEASURED and status["effort"]["measured"] == MIN_MEASURED
    assert status["effort"]["seconds_per_image"] == 19.0 and status["effort"]["seconds_source"].startswith("measured")
    assert status["config"]["seconds_per_image"] == 30.0  # the estimate stays in the settings
    plain = " ".join(CliRunner().invoke(app, ["al", "status", str(project)]).output.split())  # rich wraps lines
    assert "median 19.0 s" in plain and "cost figures use 19.0 s per image (measured" in plain
    report = api.al_report(project, tmp_path / "report")
    text = report.read_text() if report.suffix == ".md" else (report / "report.md").read_text()
    assert "19.0 s (measured: median of 10 labels" in text


def test_leaving_the_editor_releases_only_ones_own_lease(project):
    ana, bob = client_of(project), client_of(project)
    sign_in(ana, "ana"), sign_in(bob, "bob")
    image_id = ana.post("/api/queue/next").json()["id"]
    assert bob.delete(f"/api/images/{image_id}/lease?if_mine=1").json() == {"ok": True, "released": False}
    assert ana.get(f"/api/images/{image_id}").json()["lease"]["mine"]
    assert ana.delete(f"/api/images/{image_id}/lease?if_mine=1").json() == {"ok": True, "released": True}
    assert ana.get(f"/api/images/{image_id}").json()["lease"] is None


def test_a_labeller_sees_the_medians_and_their_own_times_an_admin_everyones(project):
    ana, bob, root = client_of(project), client_of(project), client_of(project)
    sign_in(ana, "ana"), sign_in(bob, "bob"), sign_in(root, "root")
    label_next(ana, 20.0)
    label_next(bob, 60.0)
    for client, name in ((ana, "ana"), (bob, "bob")):
        data = client.get("/api/effort").json()
        assert data["median_seconds"] == 40.0 and data["measured"] == 2  # the project's figures
        assert [row["name"] for row in data["labellers"]] == [name]
        assert {row["labelled_by"] for row in data["labels"]} == {name}
        assert [row["name"] for row in client.get("/api/dashboard").json()["effort"]["labellers"]] == [name]
    assert [row["name"] for row in root.get("/api/dashboard").json()["effort"]["labellers"]] == ["ana", "bob"]
    assert len(root.get("/api/effort").json()["labels"]) == 2


def test_a_reloaded_editor_keeps_its_lease_when_the_old_page_releases_late(project):
    ana = client_of(project)
    sign_in(ana, "ana")
    image_id = ana.post("/api/queue/next").json()["id"]
    assert ana.post(f"/api/images/{image_id}/lease", headers={"X-Lease-Page": "old"}).status_code == 200
    assert ana.post(f"/api/images/{image_id}/lease", headers={"X-Lease-Page": "new"}).status_code == 200  # the reload
    late = ana.delete(f"/api/images/{image_id}/lease?if_mine=1&page=old")  # the old page's release arrives after
    assert late.json() == {"ok": True, "released": False} and ana.get(f"/api/images/{image_id}").json()["lease"]["mine"]
    assert ana.post(f"/api/images/{image_id}/mask", content=EMPTY).status_code == 200
