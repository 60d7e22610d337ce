"""The round worker: the web app's "start next round" runs one round (train, evaluate, score the
pool, queue the next batch, pre-annotate it) in a child process, one at a time per project.

The child is ``python -m crackal.app.worker PROJECT``: it runs ``crackal.active.loop.run_round``
under the project's write lock, exactly as ``crackal al step`` does, so a worker that crashes or
is killed leaves the project as a killed ``al step`` does: starting it again (or ``crackal al
resume``) finishes the interrupted round from its last checkpoint. It reports its state and
progress (phase, e.g. ``training 003`` or ``scoring pool (40 images)``, and how far it got) in
``PROJECT/.worker.json``, written atomically; the server reads that file and checks that the
process it names is alive.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TypeVar

from crackal.errors import CrackalError
from crackal.progress import Progress

STATUS = ".worker.json"
LOG = ".worker.log"
T = TypeVar("T")


def read_status(root: Path) -> dict:
    """The worker's last report (``{"state": "idle"}`` when none ran)."""
    try:
        return json.loads((root / STATUS).read_text())
    except (OSError, ValueError):
        return {"state": "idle"}


def write_status(root: Path, status: dict) -> None:
    """Replace the report atomically."""
    tmp = root / f"{STATUS}.tmp{os.getpid()}"
    tmp.write_text(json.dumps(status))
    os.replace(tmp, root / STATUS)


class StatusProgress(Progress):
    """A ``Progress`` that also writes the phase and the count of each loop into the status file
    (at most every ``every`` seconds), and keeps the last news line (an epoch's scores)."""

    def __init__(self, root: Path, status: dict, every: float = 0.5, detail: bool = True) -> None:
        super().__init__(enabled=True, stream=sys.stderr, interval=10.0, detail=detail)
        self.root, self.status, self.every = root, status, every
        self._last = 0.0

    def brief(self) -> StatusProgress:
        """The same reports without the inner loops (a round's training epochs, not its batches)."""
        quieter = StatusProgress(self.root, self.status, self.every, detail=False)
        quieter._last = self._last
        return quieter

    def report(self, force: bool = False, **values) -> None:
        """Update the status and write it (always with ``force``)."""
        self.status.update(values, updated=time.time())
        now = time.monotonic()
        if force or now - self._last >= self.every:
            self._last = now
            write_status(self.root, self.status)

    def line(self, text: str, detail: bool = False) -> None:
        """Remember the news line (and print it to the log)."""
        super().line(text, detail)
        if not detail or self.detail:
            self.report(news=text)

    def bar(self, items: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it",
            detail: bool = False) -> Iterator[T]:
        """``items``, reporting ``phase`` (the loop's description), ``done``, ``total`` and ``unit``."""
        if detail and not self.detail:
            yield from items
            return
        if total is None:
            total = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
        self.report(force=True, phase=desc, done=0, total=total, unit=unit)
        done = 0
        for item in super().bar(items, total, desc, unit, detail):  # plain lines in the log too
            yield item
            done += 1
            self.report(phase=desc, done=done, total=total, unit=unit)
        self.report(force=True, phase=desc, done=done, total=total, unit=unit)


def run(root: str | Path) -> int:
    """Run one round of the project (or finish an interrupted one), pre-annotate the new queue,
    and report in ``PROJECT/.worker.json``; returns the exit status (0 done, 1 failed)."""
    from crackal.active.loop import run_round
    from crackal.active.store import open_project
    from crackal.app.prelabels import precompute

    root = Path(root)
    status = {"state": "running", "pid": os.getpid(), "started": time.time(), "phase": "starting"}
    progress = StatusProgress(root, status)
    progress.report(force=True)
    try:
        result = run_round(root, progress)
        store, config = open_project(root)
        with store:
            precompute(store, config, progress)
        progress.report(force=True, state="done", finished=time.time(), round=result.round, labelled=result.labelled,
                        selected=len(result.selected), phase="done")
        return 0
    except CrackalError as exc:
        progress.report(force=True, state="failed", error=str(exc), finished=time.time())
    except Exception as exc:  # noqa: BLE001 - reported to the page, the traceback goes to the log
        traceback.print_exc()
        progress.report(force=True, state="failed", error=f"{type(exc).__name__}: {exc} (see {root / LOG})",
                        finished=time.time())
    return 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RoundWorker:
    """The server's handle on the round worker of one project: start it (one at a time) and read
    its state. ``command`` replaces the child's command line (tests)."""

    def __init__(self, root: Path, command: list[str] | None = None) -> None:
        self.root = root
        self.command = command or [sys.executable, "-m", "crackal.app.worker", str(root)]
        self.process: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def _running(self, status: dict) -> bool:
        """Whether a worker is on a round: it has not reported an end, and its process lives."""
        if status.get("state") not in ("starting", "running"):
            return False
        if self.process is not None:
            return self.process.poll() is None
        pid = int(status.get("pid") or 0)  # a worker started by an earlier server
        return pid > 0 and _alive(pid)

    def status(self) -> dict:
        """The last report, with ``running`` (the process is alive) and, for a worker that died
        without reporting, ``state: "stopped"`` and what to do."""
        with self._lock:
            status = read_status(self.root)
            running = self._running(status)
            if status.get("state") in ("starting", "running") and not running:
                code = self.process.returncode if self.process is not None else None
                status = {**status, "state": "stopped",
                          "error": "the worker stopped before finishing the round"
                                   + (f" (exit status {code})" if code is not None else "")
                                   + "; start it again to resume the round from its last checkpoint"}
            return {**status, "running": running}

    def start(self) -> dict:
        """Start the child unless one is running (``CrackalError`` then)."""
        with self._lock:
            if self._running(read_status(self.root)):
                raise CrackalError("a round is already running in this project; wait for it to finish")
            write_status(self.root, {"state": "starting", "phase": "starting", "started": time.time(), "pid": None})
            env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"}
            with (self.root / LOG).open("ab") as log:
                self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                env=env, start_new_session=True)
        return self.status()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Signal the child (the server's shutdown, tests); the round stays resumable."""
        with self._lock:
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(sig)


def main(argv: list[str] | None = None) -> int:
    """``python -m crackal.app.worker PROJECT``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m crackal.app.worker PROJECT", file=sys.stderr)
        return 2
    return run(args[0])


if __name__ == "__main__":
    sys.exit(main())
