"""The sign-in throttle of the labelling web app, kept in ``project.db`` (table ``login_failures``)
so that restarting the server does not reset it.

Every sign-in attempt is first recorded as a failure of its name, in the transaction that counts
the name's recent failures, and forgotten when the password proves right: attempts sent at the
same moment count each other, so no burst gets past the limit. Past ``limit`` failures of a name
within ``window`` seconds, that name's sign-ins wait until the oldest one is ``window`` seconds
old (the right password too). Rows older than the window are dropped as attempts come.
"""

from __future__ import annotations

import time

from crackal.active.store import ProjectStore

LIMIT = 5  # failures per name within WINDOW seconds, then sign-ins of that name wait
WINDOW = 300.0
MAX_NAME = 100  # characters of a name kept (longer ones cannot be users)


def attempt(store: ProjectStore, name: str, limit: int = LIMIT, window: float = WINDOW, clock=time.time) -> float:
    """Record a sign-in attempt of ``name`` as a failure unless the name is throttled; returns 0
    when the attempt may go on, else the seconds to wait (nothing recorded then)."""
    moment = clock()
    key = name[:MAX_NAME]
    with store.transaction() as tx:
        tx.execute("DELETE FROM login_failures WHERE at <= ?", (moment - window,))
        times = [row[0] for row in tx.execute("SELECT at FROM login_failures WHERE name = ? ORDER BY at", (key,))]
        if len(times) >= limit:
            return max(1.0, times[len(times) - limit] + window - moment)
        tx.execute("INSERT INTO login_failures (name, at) VALUES (?, ?)", (key, moment))
    return 0.0


def succeeded(store: ProjectStore, name: str) -> None:
    """The password was right: forget the name's failures."""
    with store.transaction() as tx:
        tx.execute("DELETE FROM login_failures WHERE name = ?", (name[:MAX_NAME],))
