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
FAST = {"base_channels": 8, "depth": 2, "epochs": 1, "samples_per_epoch": 8, "batch_size": 4, "crop_size": 64}


def make_web_project(root: Path, data: Path | None = None, count: int = 10, size: int = 64, task: str = "segmentation",
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
