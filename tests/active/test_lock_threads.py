"""The project lock between threads of one process: re-entrant within a thread, exclusive between threads."""

import threading

import pytest

from crackal.active.lock import project_lock
from crackal.errors import CrackalError


def test_two_threads_exclude_each_other_and_one_thread_reenters(tmp_path):
    held, release, seen = threading.Event(), threading.Event(), []

    def holder():
        with project_lock(tmp_path, "round thread"), project_lock(tmp_path, "the same thread again"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    try:
        assert held.wait(10)
        with pytest.raises(CrackalError, match=r"is busy: 'round thread' \(pid"), project_lock(tmp_path, "webhook"):
            seen.append("entered")
    finally:
        release.set()
        thread.join()
    assert not seen
    with project_lock(tmp_path, "after the thread"):
        assert "after the thread" in (tmp_path / ".lock").read_text()
