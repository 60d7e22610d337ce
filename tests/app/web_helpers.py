"""Helpers of the web app's tests: a small labelling project (a pool without masks, a labelled
held-out set), its users, and signing in with a test client."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
from PIL import Image

from crackal.active.config import ALConfig
from crackal.active.project import create_project
from crackal.active.store import ProjectStore
from crackal.app.accounts import add_user
from crackal.data.layout import find_pairs
from crackal.data.synth import write_synthetic_dataset

PASSWORDS = {"ana": "ana-password", "bob": "bob-password", "root": "root-password"}
ROLES = {"ana": "labeller", "bob": "labeller", "root": "admin"}
FAST = {"arch": "unet", "base_channels": 8, "depth": 2, "epochs": 1, "samples_per_epoch": 8, "batch_size": 4, "crop_size": 64}


def make_web_project(root: Path, data: Path | None = None, count: int = 10, size: int | tuple[int, int] = 64, task: str = "segmentation",
                     classes: list[str] | None = None, initial: int = 6, query_size: int = 3, heldout: int = 2,
                     users: bool = True) -> Path:
    """A labelling project (no ground truth for the pool) of ``count`` synthetic images, the
    last ``heldout`` of them held out, with ``initial`` queued, and the users ana, bob, root."""
    data = data or write_synthetic_dataset(root.parent / f"{root.name}-data", count=count, size=size, seed=3)
    pairs = find_pairs(data)
    pool = [(p.name, p.image, None) for p in pairs[:-heldout]]
    held = [(p.name, p.image, p.mask) for p in pairs[-heldout:]]
    train = {k: v for k, v in FAST.items() if task == "segmentation" or k in ("epochs", "batch_size")}
    if classes:
        train["class_names"] = classes
    config = ALConfig(task=task, initial=initial, query_size=query_size, iterations=3, train=train)
    create_project(root, pool, held, config).close()
    if users:
        store = ProjectStore(root)
        for name, password in PASSWORDS.items():
            add_user(store, name, password, ROLES[name])
        store.close()
    return root


def sign_in(client, name: str) -> str:
    """Sign ``client`` in as ``name``; returns the CSRF token (also set as the client's header)."""
    response = client.post("/api/login", json={"name": name, "password": PASSWORDS[name]})
    assert response.status_code == 200, response.text
    csrf = response.json()["csrf"]
    client.headers["X-CSRF-Token"] = csrf
    return csrf


def mask_png(mask: np.ndarray) -> bytes:
    """A PNG of class indices, as the editor uploads it."""
    out = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8)).save(out, format="PNG")
    return out.getvalue()


class Clock:
    """A clock the tests move forward."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# --- browser tests ------------------------------------------------------------------------------------

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "images"


def chromium_or_skip() -> str:
    """The Debian ``chromium`` binary (or ``CRACKAL_CHROMIUM``), with playwright importable.
    Without them the browser tests are skipped on a workstation and fail in CI (``CI`` set):
    ``.ci/run`` installs chromium, so there they must run."""
    import os
    import shutil

    import pytest

    problem = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "the playwright package is not installed (pip install -e '.[test]')"
    path = os.environ.get("CRACKAL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if problem is None and not path:
        problem = "no chromium binary (apt-get install -y chromium, or set CRACKAL_CHROMIUM)"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run in CI: {problem}")
        pytest.skip(problem)
    return str(path)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``crackal serve PROJECT --port N`` in a child process, until ``stop``."""

    def __init__(self, project: Path, lease_minutes: float = 30) -> None:
        import os
        import subprocess
        import sys
        import urllib.request

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = project.parent / f"{project.name}-serve.log"
        env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
        with self.log.open("wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "crackal", "serve", str(project), "--port", str(self.port),
                                             "--lease-minutes", str(lease_minutes)], stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.url + "/login", timeout=2).read()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"crackal serve did not start: {self.log.read_text()[-2000:]}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except Exception:  # noqa: BLE001
                self.process.kill()


def browser_page(playwright, chromium: str, width: int = 1280, height: int = 800):
    """A new headless Chromium page (its browser closes with ``page.context.browser.close()``)."""
    browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"])
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.set_default_timeout(60_000)  # a shared, loaded CI machine
    return page


def sign_in_page(page, url: str, name: str) -> None:
    """Sign in through the login form."""
    page.goto(url + "/login")
    page.fill("#name", name)
    page.fill("#password", PASSWORDS[name])
    page.click("#signin")
    page.wait_for_url(url + "/queue")


def screenshot(page, name: str, tmp: Path, full_page: bool = False) -> Path:
    """Save a screenshot in ``tmp``; with ``CRACKAL_SCREENSHOTS=1`` also as docs/images/NAME (the README's)."""
    import os
    import shutil

    path = tmp / name
    page.screenshot(path=str(path), full_page=full_page)
    if os.environ.get("CRACKAL_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, SCREENSHOTS / name)
    return path
