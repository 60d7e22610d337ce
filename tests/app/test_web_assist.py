"""The tracing and fill endpoints of the web app: answers on images with a known line and
pothole, the probability map of the latest round as the cost, and refusals (bad points, too
many, not numbers, an unknown image, another user's lease) as 4xx JSON that change nothing."""

from __future__ import annotations

import base64
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.draw import disk
from starlette.testclient import TestClient

from crackal.active.store import ProjectStore
from crackal.app.assist import MAX_POINTS
from crackal.app.server import AppSettings, create_app
from tests.app.web_helpers import make_web_project, sign_in

HEIGHT, WIDTH = 48, 64


def write_data(folder: Path, count: int = 5) -> Path:
    """Images of a grey road with a dark horizontal crack at row 12 (x 4..59) and a dark pothole
    (a disc of radius 7 at x 44, y 32); masks alike."""
    rng = np.random.default_rng(0)
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for i in range(count):
        image = np.clip(rng.normal(150, 10, (HEIGHT, WIDTH)), 0, 255).astype(np.uint8)
        mask = np.zeros((HEIGHT, WIDTH), np.uint8)
        image[12, 4:60] = mask[12, 4:60] = 50
        rows, cols = disk((32, 44), 7)
        image[rows, cols] = 70
        mask[rows, cols] = 1
        Image.fromarray(np.repeat(image[:, :, None], 3, 2)).save(folder / "images" / f"road{i}.png")
        Image.fromarray(((mask > 0) * 255).astype(np.uint8)).save(folder / "masks" / f"road{i}.png")
    return folder


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_data(tmp_path_factory.mktemp("assistdata"))


@pytest.fixture
def project(tmp_path, data) -> Path:
    return make_web_project(tmp_path / "project", data, initial=3, heldout=1)


def signed_in(project: Path, name: str, app=None) -> TestClient:
    client = TestClient(app or create_app(project, settings=AppSettings()), base_url="http://testserver")
    sign_in(client, name)
    return client


def files_of(project: Path) -> list[str]:
    return sorted(str(p.relative_to(project)) for p in project.rglob("*") if p.is_file() and p.suffix != ".db-wal"
                  and p.suffix != ".db-shm" and p.name != "project.db")


def labels_of(project: Path) -> list[tuple]:
    store = ProjectStore(project)
    try:
        return [tuple(r) for r in store.conn.execute("SELECT * FROM labels ORDER BY id")]
    finally:
        store.close()


def region_of(answer: dict) -> np.ndarray:
    """The fill answer as a full-size boolean mask."""
    box = np.frombuffer(zlib.decompress(base64.b64decode(answer["mask"])), np.uint8)
    out = np.zeros((HEIGHT, WIDTH), bool)
    out[answer["y0"]:answer["y1"], answer["x0"]:answer["x1"]] = box.reshape(answer["y1"] - answer["y0"], -1) > 0
    return out


def test_trace_follows_the_crack_and_fill_returns_the_pothole(project):
    client = signed_in(project, "ana")
    image_id = client.post("/api/queue/next").json()["id"]
    answer = client.post(f"/api/images/{image_id}/trace", json={"points": [[5.5, 12.5], [30.2, 13.1], [58.5, 12.5]]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["source"] == "ridge"  # no round yet
    path = body["path"]
    assert {y for _, y in path} == {12} and path[0][0] <= 7 and path[-1][0] >= 56
    assert [x for x, _ in path] == sorted(x for x, _ in path)
    fill = client.post(f"/api/images/{image_id}/fill", json={"x": 44, "y": 32})
    assert fill.status_code == 200, fill.text
    region, truth = region_of(fill.json()), np.zeros((HEIGHT, WIDTH), bool)
    truth[disk((32, 44), 7)] = True
    assert fill.json()["pixels"] == int(region.sum())
    assert (region & truth).sum() >= 0.9 * truth.sum() and (region & ~truth).sum() <= 0.1 * truth.sum()
    refused = client.post(f"/api/images/{image_id}/fill", json={"x": 2, "y": 40})  # the road: most of the image
    assert refused.status_code == 422 and "nothing filled" in refused.json()["error"]


def test_the_latest_rounds_probability_map_is_the_cost(project):
    """A round's probability layer (as the review viewer caches it) steers the path, even where
    the image shows no line."""
    store = ProjectStore(project)
    store.start_round(1, 3)
    store.update_round(1, checkpoint=project / "model.pt", state="done")
    image_id = store.queue()[0][0].id
    store.close()
    folder = project / ".cache" / "review" / "001"
    folder.mkdir(parents=True)
    prob = np.zeros((HEIGHT, WIDTH), np.uint8)
    prob[30, 5:60] = 240  # the model's crack: row 30, not the drawn one at row 12
    Image.fromarray(prob).save(folder / f"{image_id}-probability.png")
    client = signed_in(project, "ana")
    assert client.post(f"/api/images/{image_id}/lease").status_code == 200
    answer = client.post(f"/api/images/{image_id}/trace", json={"points": [[6, 30], [58, 30]]}).json()
    assert answer["source"] == "probability" and {y for _, y in answer["path"]} == {30}


def test_bad_requests_get_a_clear_4xx_and_change_nothing(project):
    app = create_app(project, settings=AppSettings())
    ana, bob = signed_in(project, "ana", app), signed_in(project, "bob", app)
    image_id = ana.post("/api/queue/next").json()["id"]
    other = bob.post("/api/queue/next").json()["id"]
    before = (files_of(project), labels_of(project))
    trace, fill = f"/api/images/{image_id}/trace", f"/api/images/{image_id}/fill"
    cases = [
        (trace, {"points": [[5, 5], [64, 5]]}, 400, "outside the 64x48 image"),
        (trace, {"points": [[5, 5], [-1, 5]]}, 400, "outside"),
        (trace, {"points": [[5, 5]] * (MAX_POINTS + 1)}, 400, f"at most {MAX_POINTS}"),
        (trace, {"points": [[5, "a"], [6, 6]]}, 400, "point 1's y must be a number"),
        (trace, {"points": [[5, True], [6, 6]]}, 400, "must be a number"),
        (trace, {"points": [[5, 5, 5]]}, 400, "expected [x, y]"),
        (trace, {"points": []}, 400, "at least one point"),
        (trace, {"dots": [[5, 5]]}, 400, "at least one point"),
        (trace, [1, 2], 400, "JSON object"),
        (fill, {"x": 70, "y": 5}, 400, "outside"),
        (fill, {"x": "5", "y": 5}, 400, "x must be a number"),
        (fill, {"y": 5}, 400, "x must be a number"),
        (fill, {"x": 5, "y": 5, "tolerance": 3}, 400, "tolerance must be between 0 and 1"),
        (f"/api/images/{other}/trace", {"points": [[5, 5], [9, 9]]}, 409, "leased to bob"),
        (f"/api/images/{other}/fill", {"x": 5, "y": 5}, 409, "leased to bob"),
        ("/api/images/99999/trace", {"points": [[5, 5]]}, 404, "no such image"),
        ("/api/images/99999/fill", {"x": 5, "y": 5}, 404, "no such image"),
    ]
    for url, body, status, message in cases:
        response = ana.post(url, json=body)
        assert response.status_code == status, (url, body, response.text)
        assert message in response.json()["error"], (url, body, response.json())
    assert ana.post(trace, content=b"{not json").status_code == 400
    nan = ana.post(trace, content=b'{"points": [[NaN, 5]]}', headers={"content-type": "application/json"})
    assert nan.status_code == 400 and "must be a number" in nan.json()["error"]
    del ana.headers["X-CSRF-Token"]
    assert ana.post(trace, json={"points": [[5, 5]]}).status_code == 403  # a write: CSRF
    assert (files_of(project), labels_of(project)) == before
    assert TestClient(app).post(trace, json={"points": [[5, 5]]}).status_code == 401
