"""One writer at a time per project: an exclusive lock on ``PROJECT/.lock``.

Two commands that write one project (two ``al step``, an ``al step`` and an ``al import``, the
web app's worker) never interleave: the second waits up to ``wait`` seconds, then stops with a
message that names the holder (pid, command, since when). The lock is an ``flock`` on an open
file, so the system releases it when its holder dies, however it dies: a lock left by a killed
process is taken over at once. Within one thread the lock is re-entrant (``al run`` holds it
while each of its rounds takes it again); two threads of one process exclude each other as two
processes do (the ML backend's round thread and its label imports), as ``flock`` locks each
open of the file on its own.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from crackal.errors import CrackalError

_LOCAL = threading.local()  # .held: lock file -> how many times this thread holds it


def _held() -> dict[Path, int]:
    if not hasattr(_LOCAL, "held"):
        _LOCAL.held = {}
    return _LOCAL.held


def _holder(lock_file: Path) -> str:
    try:
        info = json.loads(lock_file.read_text() or "{}")
    except (OSError, json.JSONDecodeError):
        info = {}
    if not info:
        return "another process"
    return f"'{info.get('command', '?')}' (pid {info.get('pid', '?')} on {info.get('host', '?')}, since {info.get('since', '?')})"


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


@contextmanager
def project_lock(root: str | Path, command: str | None = None, wait: float = 0.0) -> Iterator[None]:
    """Hold the project's write lock for the ``with`` block (see the module docstring)."""
    lock_file = (Path(root) / ".lock").absolute()
    held = _held()
    if held.get(lock_file):
        held[lock_file] += 1
        try:
            yield
        finally:
            held[lock_file] -= 1
        return
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait
        while not _try_lock(fd):
            if time.monotonic() >= deadline:
                raise CrackalError(f"{Path(root)} is busy: {_holder(lock_file)} is writing it; wait for it to finish "
                                   "(or stop it) and run this again")
            time.sleep(0.2)
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "command": command or " ".join(sys.argv),
                  "since": datetime.now(UTC).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        held[lock_file] = 1
        try:
            yield
        finally:
            held.pop(lock_file, None)
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the file releases the lock
