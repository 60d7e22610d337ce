"""Server faults: SIGKILL ``crackal serve`` at random moments while labellers submit masks, and
check that no acknowledged label is lost and nothing half-written is visible.

A labelling project of small synthetic images (all of its pool queued) is served by ``crackal
serve`` in a child process. Three labellers, each in a thread with its own session, take the
next image and submit a random mask, again and again; once this server has acknowledged its
first submit, the server gets SIGKILL after a random 0-1.5 s, in the middle of concurrent
submits. After every kill the project is checked, reading the database and the files without
crackal: SQLite's integrity check; every submit that got a 200 is the image's current label,
by its labeller, in a readable file equal to the mask sent (lost otherwise); every label row
names a complete, readable file (half-written otherwise); no labelled image is still queued.
Submits cut off before their answer may have landed or not (counted, either is fine). The
server is then started again: it must come up, remove the leftovers of interrupted writes
(``.uploads/``, temporary label files) and report no damaged label.

    python benchmarks/server_faults.py --kills 20      # about 3 minutes on 2 CPU cores
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, write_docs  # noqa: E402

LABELLERS = ("ana", "bob", "cy")
PASSWORD = "a-long-password"


def make_project(root: Path, count: int, size: int, seed: int) -> Path:
    """A labelling project of ``count`` synthetic images, 2 held out, the rest queued; users
    ana, bob, cy (labellers) and root (admin)."""
    from crackal.active.config import ALConfig
    from crackal.active.project import create_project
    from crackal.active.store import ProjectStore
    from crackal.app.accounts import add_user
    from crackal.data.layout import find_pairs
    from crackal.data.synth import write_synthetic_dataset

    pairs = find_pairs(write_synthetic_dataset(root.parent / "data", count=count, size=size, seed=seed))
    pool, held = [(p.name, p.image, None) for p in pairs[:-2]], [(p.name, p.image, p.mask) for p in pairs[-2:]]
    create_project(root, pool, held, ALConfig(initial=len(pool), query_size=3, seed=seed)).close()
    store = ProjectStore(root)
    for name in (*LABELLERS, "root"):
        add_user(store, name, PASSWORD, "admin" if name == "root" else "labeller")
    store.close()
    return root


class Server:
    """``crackal serve PROJECT --port N`` in a child process."""

    def __init__(self, project: Path, log: Path) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "PYTHONPATH": str(ROOT)}
        started = time.monotonic()
        with log.open("ab") as out:
            self.process = subprocess.Popen([sys.executable, "-m", "crackal", "serve", str(project), "--port", str(self.port)],
                                            stdout=out, stderr=subprocess.STDOUT, env=env)
        while True:
            try:
                urllib.request.urlopen(self.url + "/login", timeout=2).read()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() - started > 120:
                    self.process.kill()
                    raise SystemExit(f"crackal serve did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.1)
        self.start_seconds = time.monotonic() - started

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()


def client(url: str, name: str):
    """An HTTP client signed in as ``name`` (cookie and CSRF header set)."""
    import httpx

    http = httpx.Client(base_url=url, timeout=60)
    response = http.post("/api/login", json={"name": name, "password": PASSWORD})
    response.raise_for_status()
    http.headers["X-CSRF-Token"] = response.json()["csrf"]
    return http


def png(mask: np.ndarray) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(mask).save(out, format="PNG")
    return out.getvalue()


class Labellers:
    """Threads that take the next image and submit a random mask until told to stop or the server dies."""

    def __init__(self, url: str, size: int, seed: int, acknowledged: dict) -> None:
        self.acknowledged = acknowledged  # image id -> (labeller, mask), every 200 received
        self.in_flight = 0
        self.first = threading.Event()
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.empty = False
        self.errors: list[str] = []
        self.threads = [threading.Thread(target=self._run, args=(url, name, size, seed + i), daemon=True)
                        for i, name in enumerate(LABELLERS)]
        for thread in self.threads:
            thread.start()

    def _run(self, url: str, name: str, size: int, seed: int) -> None:
        import httpx

        rng = np.random.default_rng(seed)
        try:
            http = client(url, name)
            while not self.stop.is_set():
                response = http.post("/api/queue/next")
                if response.status_code != 200:
                    self.errors.append(f"{name}: next image: {response.status_code} {response.text[:200]}")
                    return
                image_id = response.json()["id"]
                if image_id is None:
                    self.empty = True
                    return
                mask = (rng.random((size, size)) < 0.2).astype(np.uint8)
                with self.lock:
                    self.in_flight += 1
                try:
                    response = http.post(f"/api/images/{image_id}/mask", content=png(mask))
                finally:
                    with self.lock:
                        self.in_flight -= 1
                if response.status_code != 200:
                    self.errors.append(f"{name}: {response.status_code} {response.text[:200]}")
                    return
                with self.lock:
                    self.acknowledged[image_id] = (name, mask)
                self.first.set()
        except httpx.HTTPError:
            return  # the server was killed

    def join(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)


def read_label(path: Path) -> np.ndarray | None:
    """A label file's pixels as 0/1, read without crackal; None when it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            return (np.asarray(img) > 0).astype(np.uint8)
    except Exception:  # noqa: BLE001 - any unreadable file
        return None


def check(project: Path, acknowledged: dict) -> dict:
    """The invariants, read from the database and the files directly (see the module docstring)."""
    conn = sqlite3.connect(f"file:{project / 'project.db'}?mode=ro", uri=True)
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        rows = conn.execute("SELECT id, image_id, path, labelled_by FROM labels ORDER BY id").fetchall()
        queued = {row[0] for row in conn.execute("SELECT image_id FROM queue")}
    finally:
        conn.close()
    current = {image_id: (path, by) for _, image_id, path, by in rows}  # the latest row of each image
    half = [path for _, _, path, _ in rows if read_label(project / path) is None]
    lost = []
    for image_id, (name, mask) in acknowledged.items():
        stored = current.get(image_id)
        read = read_label(project / stored[0]) if stored else None
        if stored is None or stored[1] != name or read is None or not np.array_equal(read, mask):
            lost.append(image_id)
    named = {path for _, _, path, _ in rows}
    leftovers = [p for p in (project / ".uploads").glob("*")] if (project / ".uploads").is_dir() else []
    leftovers += [p for p in (project / "labels").iterdir() if str(p.relative_to(project)) not in named]
    return {"integrity": integrity, "rows": len(rows), "lost": lost, "half_written": half,
            "labelled_and_queued": sorted(queued & set(current)), "unacknowledged_stored": len(set(current) - set(acknowledged)),
            "leftovers": len(leftovers), "temporary": sum(1 for p in leftovers if ".tmp." in p.name or p.parent.name == ".uploads")}


def startup_report(server: Server) -> dict:
    """What the restarted server says: its label check (damaged labels) once done."""
    http = client(server.url, "root")
    deadline = time.monotonic() + 60
    while True:
        data = http.get("/api/dashboard").json()
        if data.get("labels_checked") or time.monotonic() > deadline:
            return {"checked": bool(data.get("labels_checked")), "damaged": data.get("damaged_labels", [])}
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--size", type=int, default=32, help="image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="working folder (default: a temporary one)")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks/server_faults.md")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="server_faults-"))
    project = make_project(out / "project", count=args.kills * 300 + 60, size=args.size, seed=args.seed)  # ~100 submits a second
    log = out / "serve.log"
    rng = random.Random(args.seed)
    acknowledged: dict = {}
    rows, problems = [], []
    started = time.monotonic()
    server = Server(project, log)
    for kill in range(1, args.kills + 1):
        labellers = Labellers(server.url, args.size, args.seed * 1000 + kill * 10, acknowledged)
        if not labellers.first.wait(120):
            raise SystemExit(f"no submit acknowledged: {labellers.errors} {log.read_text()[-2000:]}")
        delay = rng.uniform(0.0, 1.5)
        time.sleep(delay)
        in_flight = labellers.in_flight
        server.kill()
        labellers.join()
        problems += labellers.errors
        state = check(project, acknowledged)
        server = Server(project, log)
        report = startup_report(server)
        after = check(project, acknowledged)
        rows.append({"kill": kill, "after first answer (s)": f"{delay:.2f}", "submits in flight": in_flight,
                     "acknowledged so far": len(acknowledged), "label rows": state["rows"], "lost": len(state["lost"]),
                     "half-written": len(state["half_written"]), "landed unanswered": state["unacknowledged_stored"],
                     "leftover files": state["leftovers"], "temporary left after restart": after["temporary"],
                     "damaged reported": len(report["damaged"]), "restart (s)": f"{server.start_seconds:.1f}"})
        for name, value in (("integrity", state["integrity"] != "ok"), ("lost", state["lost"]),
                            ("half-written", state["half_written"]), ("labelled and queued", state["labelled_and_queued"]),
                            ("temporary files after restart", after["temporary"]), ("damaged at restart", report["damaged"]),
                            ("label check not done", not report["checked"])):
            if value:
                problems.append(f"kill {kill}: {name}: {value}")
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
        if labellers.empty:
            break
    server.stop()
    total = {"kills": len(rows), "acknowledged": len(acknowledged), "lost": sum(r["lost"] for r in rows),
             "half_written": sum(r["half-written"] for r in rows), "in_flight_at_kills": sum(r["submits in flight"] for r in rows),
             "landed_unanswered": rows[-1]["landed unanswered"] if rows else 0, "problems": problems,
             "minutes": round((time.monotonic() - started) / 60, 1)}
    header = list(rows[0]) if rows else []
    print("| " + " | ".join(header) + " |")
    print("|" + " --- |" * len(header))
    for row in rows:
        print("| " + " | ".join(str(v) for v in row.values()) + " |")
    print(json.dumps(total))
    if not args.no_docs:
        import platform

        summary = (f"{total['kills']} kills, {total['acknowledged']} submits acknowledged, {total['in_flight_at_kills']} in flight "
                   f"when the server was killed: {total['lost']} lost, {total['half_written']} half-written, "
                   f"{len(problems)} problems; {total['landed_unanswered']} submits landed without their answer "
                   f"reaching the client; {total['minutes']} minutes.")
        write_docs("server_faults", summary, rows, hardware=f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    if problems:
        raise SystemExit("\n".join(problems))


if __name__ == "__main__":
    main()
