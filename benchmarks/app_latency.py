"""The labelling web app on 4000 x 3000 photos (a drone or phone photo's size): how long opening an
image with its pre-annotation takes (server side, with the pre-annotation cached by the round
worker and without, when the model runs on first opening; and in headless Chromium, from the
page's request to the editor being ready to paint), and the server time of a submit (the mask's
checks and its atomic write, from the Server-Timing header). Medians of 10 images.

A small project is made in a temporary folder: 5 small labelled images train a tiny U-Net for
one round, which scores a pool of 10 synthetic 4000 x 3000 JPEG photos and queues them.

    .venv/bin/python benchmarks/app_latency.py   (the browser row needs chromium and playwright)
"""

from __future__ import annotations

import io
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from _common import hardware, markdown_table, write_docs
from PIL import Image

HEIGHT, WIDTH, PHOTOS = 3000, 4000, 10
PASSWORD = "benchmark-password"


def photo(rng: np.random.Generator, path: Path) -> Path:
    """A grey pavement-like texture with a few dark cracks, saved as a JPEG."""
    small = rng.integers(90, 170, (HEIGHT // 40, WIDTH // 40), dtype=np.uint8)
    base = np.asarray(Image.fromarray(small).resize((WIDTH, HEIGHT), Image.BILINEAR), np.int16)
    base += rng.integers(-12, 12, (HEIGHT, WIDTH), dtype=np.int16)
    for _ in range(4):
        x0, x1 = sorted(rng.integers(0, WIDTH, 2))
        y = int(rng.integers(100, HEIGHT - 100))
        xs = np.arange(x0, x1)
        ys = (y + 40 * np.sin(xs / 300)).astype(int)
        for dy in range(-3, 4):
            base[ys + dy, xs] //= 3
    Image.fromarray(np.repeat(base.clip(0, 255).astype(np.uint8)[:, :, None], 3, 2)).save(path, quality=90)
    return path


def make_project(root: Path) -> Path:
    from crackal.active.config import ALConfig
    from crackal.active.labels import NewLabel, store_labels
    from crackal.active.loop import run_round
    from crackal.active.project import create_project
    from crackal.app.accounts import add_user
    from crackal.data.io import read_raw_mask, to_class_mask
    from crackal.data.layout import find_pairs
    from crackal.data.synth import write_synthetic_dataset

    pairs = find_pairs(write_synthetic_dataset(root / "small", count=6, size=128, seed=5))
    config = ALConfig(initial=5, query_size=PHOTOS, iterations=3, train={
        "arch": "unet", "base_channels": 8, "depth": 2, "epochs": 2, "samples_per_epoch": 16, "batch_size": 4, "crop_size": 64})
    store = create_project(root / "project", [(p.name, p.image, None) for p in pairs[:5]],
                           [(p.name, p.image, p.mask) for p in pairs[5:]], config)
    truth = {p.name: p.mask for p in pairs}
    store_labels(store, [NewLabel(r, r.name, to_class_mask(read_raw_mask(truth[r.name]), 2, truth[r.name]), "bench")
                         for r, _, _ in store.queue()], config.class_names)
    rng = np.random.default_rng(0)
    (root / "photos").mkdir()
    store.add_images([(f"photo{i}", photo(rng, root / "photos" / f"photo{i}.jpg"), "pool", None) for i in range(PHOTOS)])
    add_user(store, "ana", PASSWORD, "labeller")
    store.close()
    started = time.perf_counter()
    run_round(root / "project")  # trains on the small images, scores and queues the photos
    print(f"round: {time.perf_counter() - started:.0f} s", flush=True)
    return root / "project"


def median_ms(values: list[float]) -> int:
    return round(1000 * statistics.median(values))


def open_times(client, ids: list[int], project: Path, cached: bool) -> list[float]:
    """Wall time of the three requests the editor makes to open an image (in-process client)."""
    times = []
    for image_id in ids:
        if not cached:
            shutil.rmtree(project / ".cache", ignore_errors=True)
        start = time.perf_counter()
        info = client.get(f"/api/images/{image_id}").json()
        image = client.get(f"/api/images/{image_id}/image")
        prelabel = client.get(f"/api/images/{image_id}/prelabel")
        times.append(time.perf_counter() - start)
        assert (info["width"], info["height"]) == (WIDTH, HEIGHT) and image.status_code == prelabel.status_code == 200
    return times


def browser_times(app, ids: list[int]) -> list[float] | None:
    """From asking for the editor page to the editor being ready to paint, in headless Chromium."""
    import shutil as sh

    chromium = sh.which("chromium") or sh.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        chromium = None
    if not chromium:
        print("no chromium or playwright: the browser row is left out", flush=True)
        return None
    import socket

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    times = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(120_000)
            page.goto(url + "/login")
            page.fill("#name", "ana")
            page.fill("#password", PASSWORD)
            page.click("#signin")
            page.wait_for_url(url + "/queue")
            for image_id in ids:
                start = time.perf_counter()
                page.goto(f"{url}/label/{image_id}")
                page.wait_for_selector("body[data-ready=true]")
                times.append(time.perf_counter() - start)
            browser.close()
    finally:
        server.should_exit = True
        thread.join(10)
    return times


def submit_times(client, ids: list[int]) -> list[float]:
    """The server's own time (Server-Timing) of storing a 4000 x 3000 mask: decode, checks, write."""
    rng = np.random.default_rng(1)
    times = []
    for image_id in ids:
        mask = np.zeros((HEIGHT, WIDTH), np.uint8)
        for _ in range(5):
            y, x = int(rng.integers(0, HEIGHT - 10)), int(rng.integers(0, WIDTH - 1500))
            mask[y:y + 8, x:x + 1500] = 1
        out = io.BytesIO()
        Image.fromarray(mask).save(out, format="PNG")
        assert client.post(f"/api/images/{image_id}/lease").status_code == 200
        response = client.post(f"/api/images/{image_id}/mask", content=out.getvalue(), headers={"Content-Type": "image/png"})
        assert response.status_code == 200, response.text
        times.append(float(response.headers["server-timing"].split("dur=")[1]) / 1000)
    return times


def main() -> None:
    from starlette.testclient import TestClient

    from crackal.active.store import open_project
    from crackal.app.prelabels import precompute
    from crackal.app.server import create_app
    from crackal.progress import Progress

    with tempfile.TemporaryDirectory() as tmp:
        project = make_project(Path(tmp))
        app = create_app(project)
        client = TestClient(app)
        assert client.post("/api/login", json={"name": "ana", "password": PASSWORD}).status_code == 200
        client.headers["X-CSRF-Token"] = client.get("/api/me").json()["csrf"]
        ids = [item["id"] for item in client.get("/api/queue").json()["items"]]
        assert len(ids) == PHOTOS
        cold = open_times(client, ids, project, cached=False)
        store, config = open_project(project)
        started = time.perf_counter()
        precompute(store, config, Progress(enabled=False))  # what the worker does after a round
        precompute_s = (time.perf_counter() - started) / PHOTOS
        store.close()
        warm = open_times(client, ids, project, cached=True)
        browser = browser_times(app, ids)
        submit = submit_times(client, ids)
    rows = [
        {"what": "open: info + image + pre-annotation, cached by the worker (server, in-process)", "median ms": median_ms(warm)},
        {"what": "open: the same when the model runs on first opening (no cache)", "median ms": median_ms(cold)},
        {"what": "worker: pre-annotating one queued photo after a round", "median ms": round(1000 * precompute_s)},
        {"what": "open in headless Chromium: page request to the editor ready to paint (cached)",
         "median ms": median_ms(browser) if browser else None},
        {"what": "submit: server time of storing the mask (PNG decode, checks, atomic write, record)",
         "median ms": median_ms(submit)},
    ]
    print(markdown_table(rows))
    print(write_docs("app_latency", f"Photos of {WIDTH} x {HEIGHT} pixels (JPEG), masks of the same size; medians of "
                     f"{PHOTOS} images (the worker row: the mean).", rows, hardware=hardware()))


if __name__ == "__main__":
    main()
