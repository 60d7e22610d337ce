"""The labelling server under load: 20 simulated labellers working at once against one
``crackal serve`` for several minutes while a training round runs on the same machine, with the
latency of every endpoint (p50 / p95 / p99), the errors, and a check that no image was labelled
twice and no acknowledged label was lost.

    .venv/bin/python benchmarks/server_load.py [--labellers 20] [--minutes 5] [--think 3]

Each labeller loops as a person does in the editor: lease the next image (``POST
/api/queue/next``), open it (``GET /api/images/ID``, its bytes and its pre-annotation), think
(``--think`` seconds on average, exponentially distributed: far faster than a person, to load the
server), and submit a mask with its measured effort (``POST /api/images/ID/mask``). The project
is a labelling project of synthetic 256 x 256 photos, all queued. A round of one project and the
labelling of its queue never overlap (a round trains on the finished queue), so the training
round runs in a second project on the same machine (``crackal al run``, a small U-Net), which is
the load a team running two projects puts on the server's CPUs. Latency is measured by the
client (the whole request), from 15 s after the server started (it imports the label path's model
code in the background first). Targets: p95 submit <= 1 s, p95 next image <= 0.5 s, 0 errors,
0 labels lost or doubled. The tables go to docs/benchmarks/server_load.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np  # noqa: E402
from _common import ROOT, hardware, write_docs  # noqa: E402
from PIL import Image  # noqa: E402

PASSWORD = "load-test-password"
SIZE = 256


def make_project(root: Path, images: int) -> Path:
    """A labelling project of ``images`` synthetic photos, all queued, with users l00.. and an admin."""
    from crackal.active.config import ALConfig
    from crackal.active.project import create_project
    from crackal.active.store import ProjectStore
    from crackal.app.accounts import add_user
    from crackal.data.synth import write_synthetic_dataset

    data = write_synthetic_dataset(root / "data", count=images + 4, size=SIZE, seed=0)
    pairs = sorted((data / "images").iterdir())
    pool = [(p.stem, p, None) for p in pairs[:-4]]
    held = [(p.stem, p, data / "masks" / p.name) for p in pairs[-4:]]
    config = ALConfig(initial=images, query_size=10, train={"arch": "unet", "base_channels": 8, "depth": 2})
    create_project(root / "project", pool, held, config).close()
    with ProjectStore(root / "project") as store:
        for i in range(40):
            add_user(store, f"l{i:02d}", PASSWORD)
        add_user(store, "admin", PASSWORD, "admin")
    return root / "project"


def training_round(root: Path) -> subprocess.Popen:
    """A second project on the same machine, training round after round in the background."""
    from crackal import api

    data = api.synth(root / "train-data", count=60, size=128, seed=1)
    project = root / "training"
    api.al_init(project, data, initial=20, query_size=5, budget=60,
                train={"arch": "unet", "base_channels": 16, "epochs": 400, "samples_per_epoch": 16, "crop_size": 128})
    return subprocess.Popen([sys.executable, "-m", "crackal", "al", "run", str(project)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"})


def serve(project: Path) -> tuple[subprocess.Popen, str]:
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "crackal", "serve", str(project), "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                               env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"})
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            urllib.request.urlopen(url + "/login", timeout=2).read()
            return process, url
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("crackal serve did not start")


def mask_png(rng: random.Random) -> bytes:
    mask = np.zeros((SIZE, SIZE), np.uint8)
    row = rng.randrange(10, SIZE - 10)
    mask[row:row + 3, rng.randrange(0, 60):rng.randrange(120, SIZE)] = 1
    out = io.BytesIO()
    Image.fromarray(mask).save(out, format="PNG")
    return out.getvalue()


class Labeller(threading.Thread):
    """One simulated person: lease, open, think, submit, until the time is up or the queue is empty."""

    def __init__(self, name: str, url: str, until: float, think: float, seed: int) -> None:
        super().__init__(name=name, daemon=True)
        self.url, self.until, self.think = url, until, think
        self.rng = random.Random(seed)
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.stored: list[int] = []

    def call(self, client, what: str, method: str, path: str, **kwargs):
        import httpx

        started = time.perf_counter()
        try:
            response = client.request(method, self.url + path, **kwargs)
        except httpx.HTTPError as exc:  # a connection error counts as an error, and the labeller goes on
            self.errors.append(f"{what}: {type(exc).__name__}: {exc}")
            return httpx.Response(599, json={})
        self.times[what].append(time.perf_counter() - started)
        if response.status_code >= 400:
            self.errors.append(f"{what} {response.status_code}: {response.text[:120]}")
        return response

    def run(self) -> None:
        import httpx

        with httpx.Client(timeout=60) as client:
            login = self.call(client, "login", "POST", "/api/login", json={"name": self.name, "password": PASSWORD})
            client.headers["X-CSRF-Token"] = login.json()["csrf"]
            while time.monotonic() < self.until:
                leased = self.call(client, "next image", "POST", "/api/queue/next")
                if leased.status_code != 200:
                    time.sleep(1)
                    continue
                image_id = leased.json()["id"]
                if image_id is None:
                    return
                base = f"/api/images/{image_id}"
                self.call(client, "image info", "GET", base)
                self.call(client, "image bytes", "GET", base + "/image")
                self.call(client, "pre-annotation", "GET", base + "/prelabel")
                time.sleep(self.rng.expovariate(1 / self.think))
                effort = json.dumps({"active_seconds": 12.5, "strokes": 3, "undos": 0, "prelabel": "none"})
                response = self.call(client, "submit mask", "POST", base + "/mask", content=mask_png(self.rng),
                                     headers={"Content-Type": "image/png", "X-Label-Effort": effort})
                if response.status_code == 200:
                    self.stored.append(image_id)


def percentiles(values: list[float]) -> list[str]:
    return [f"{np.percentile(values, q) * 1000:.0f}" for q in (50, 95, 99)] if values else ["-"] * 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labellers", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--think", type=float, default=3.0, help="mean seconds between opening an image and submitting it")
    parser.add_argument("--images", type=int, default=3000, help="queued images (more than the labellers can label)")
    parser.add_argument("--no-training", action="store_true", help="leave out the training round in the background")
    args = parser.parse_args()
    from crackal.active.store import ProjectStore

    with tempfile.TemporaryDirectory(dir=ROOT / "runs" if (ROOT / "runs").is_dir() else None) as scratch:
        root = Path(scratch)
        project = make_project(root, args.images)
        trainer = None if args.no_training else training_round(root)
        server, url = serve(project)
        time.sleep(15)  # the server imports the label path's model code in the background at start-up: not load
        try:
            until = time.monotonic() + args.minutes * 60
            labellers = [Labeller(f"l{i:02d}", url, until, args.think, i) for i in range(args.labellers)]
            started = time.monotonic()
            for labeller in labellers:
                labeller.start()
            for labeller in labellers:
                labeller.join()
            seconds = time.monotonic() - started
            training_alive = trainer is not None and trainer.poll() is None
        finally:
            server.terminate()
            server.wait(30)
            if trainer is not None:
                trainer.kill()
        with ProjectStore(project) as store:
            rows = store.conn.execute("SELECT image_id, labelled_by FROM labels").fetchall()
        by_image = defaultdict(list)
        for row in rows:
            by_image[row["image_id"]].append(row["labelled_by"])
        acknowledged = {(image_id, labeller.name) for labeller in labellers for image_id in labeller.stored}
        lost = [pair for pair in acknowledged if pair[1] not in by_image.get(pair[0], [])]
        doubled = [image_id for image_id, names in by_image.items() if len(names) > 1]
        errors = [e for labeller in labellers for e in labeller.errors]

    times: dict[str, list[float]] = defaultdict(list)
    for labeller in labellers:
        for what, values in labeller.times.items():
            times[what] += values
    table = [[what, len(values), *percentiles(values)] for what, values in times.items()]
    submits = len(acknowledged)
    summary = (f"{args.labellers} labellers for {seconds / 60:.1f} min (think time {args.think:g} s on average), "
               f"{'with' if trainer else 'without'} a training round running in a second project"
               f"{'' if not trainer else (' (still training at the end)' if training_alive else ' (it ended before the labellers)')}: "
               f"{submits} masks stored ({submits / seconds:.1f} per second), {len(errors)} errors, {len(lost)} acknowledged "
               f"labels lost, {len(doubled)} images labelled twice.")
    print(summary)
    for row in table:
        print(row)
    for e in errors[:10]:
        print("error:", e)
    write_docs("server_load", summary, (["endpoint", "requests", "p50 ms", "p95 ms", "p99 ms"], table), hardware=hardware())


if __name__ == "__main__":
    main()
