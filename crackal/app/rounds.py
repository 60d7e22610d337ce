"""Rounds started from Label Studio ("Start training"): one at a time, in a background thread
that holds the project's lock, so the request that starts one is answered at once.

A round starts only when it can: no other round of this backend is running, no other command
holds the project, and (unless the project is a simulation) every image crackal queued has its
label. Otherwise ``start`` raises ``CrackalError`` saying which, and nothing happens. Stopping
the backend stops a running round; the next start (or ``crackal al step``) continues it.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path

from crackal.active.config import ALConfig
from crackal.active.labels import NewLabel, store_labels
from crackal.active.lock import project_lock
from crackal.active.loop import RoundResult, run_round
from crackal.active.store import ProjectStore, now, open_project
from crackal.app.inbox import Inbox
from crackal.errors import CrackalError

log = logging.getLogger("crackal.app")


def next_round(store: ProjectStore, config: ALConfig) -> int:
    """The round ``run_round`` would run now (the next, or an interrupted one), or ``CrackalError`` if it cannot start."""
    waiting = store.queue()
    if waiting and not config.simulation:
        names = ", ".join(record.name for record, _, _ in waiting[:5]) + (", ..." if len(waiting) > 5 else "")
        raise CrackalError(f"{len(waiting)} images crackal queued for labelling have no label yet ({names}); label them in "
                           "Label Studio, then start training again")
    if not store.labelled() and not waiting:
        raise CrackalError("no image of the project is labelled yet; label some in Label Studio, then start training")
    last = store.current_round()
    return last["round"] if last and last["state"] != "done" else (last["round"] + 1 if last else 1)


class RoundRunner:
    """Starts rounds in a thread and keeps what the last one did (``result`` or ``error``)."""

    def __init__(self, root: str | Path, inbox: Inbox) -> None:
        self.root, self.inbox = Path(root), inbox
        self.thread: threading.Thread | None = None
        self.round: int | None = None
        self.started_at: str | None = None
        self.result: RoundResult | None = None
        self.error: str | None = None
        self._guard = threading.Lock()
        self.lock_wait = 2.0  # seconds to wait for the project (an annotation being imported holds it for milliseconds)

    def running(self) -> bool:
        """Whether a round started here is still running."""
        return self.thread is not None and self.thread.is_alive()

    def start(self, labels: list[NewLabel] | None = None) -> int:
        """Store ``labels`` (of images still unlabelled) and the waiting annotations, then start
        the next round in a thread; returns its number once it holds the project."""
        with self._guard:
            if self.running():
                raise CrackalError(f"round {self.round} is already training (since {self.started_at}); wait for it to "
                                   "finish before starting another")
            outcome: queue.Queue = queue.Queue(maxsize=1)
            recorded = threading.Event()
            thread = threading.Thread(target=self._run, args=(labels or [], outcome, recorded), name="crackal-round",
                                      daemon=True)
            thread.start()
            started = outcome.get()
            if isinstance(started, BaseException):
                thread.join()
                raise started
            self.thread, self.round, self.started_at, self.error = thread, started, now(), None
            recorded.set()
            return started

    def _prepare(self, labels: list[NewLabel]) -> int:
        """Under the lock: import what waits, then check the round can start."""
        self.inbox.deliver()
        store, config = open_project(self.root)
        with store:
            fresh = [(store.by_name(label.record.name), label) for label in labels]
            new = [NewLabel(record, label.source, label.label, label.labeller) for record, label in fresh
                   if record is not None and not record.labelled]
            if new:
                store_labels(store, new, config.class_names)
            return next_round(store, config)

    def _run(self, labels: list[NewLabel], outcome: queue.Queue, recorded: threading.Event) -> None:
        started = False
        try:
            with project_lock(self.root, "crackal serve-ml: a round started from Label Studio", self.lock_wait):
                round_ = self._prepare(labels)
                outcome.put(round_)
                started = True
                recorded.wait()  # start() has recorded this round: what it does now is kept
                log.info("round %d started", round_)
                self.result = run_round(self.root)
                log.info("round %d finished: %d labelled, %d queued for labelling", round_, self.result.labelled,
                         len(self.result.selected))
        except BaseException as exc:
            if not started:
                outcome.put(exc)
                return
            self.error = str(exc)
            log.error("round %s failed: %s", self.round, exc, exc_info=not isinstance(exc, CrackalError))
        try:
            self.inbox.deliver()  # the annotations that arrived while it trained
        except Exception as exc:  # the thread must not die silently
            log.error("annotations waiting in %s not imported: %s", self.inbox.folder, exc, exc_info=True)
