"""Leases: opening a queued image in the editor leases it to that labeller for a while, so two
people never paint the same image. A lease expires (``minutes`` after it was taken or last
renewed); its holder renews it while the editor is open, and an admin can release it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from crackal.active.store import ProjectStore
from crackal.app.accounts import User
from crackal.errors import CrackalError


@dataclass(frozen=True)
class Lease:
    """Who holds an image, until when (Unix time)."""

    image_id: int
    user: str
    expires_at: float


class LeaseConflict(CrackalError):
    """The image is leased to someone else."""

    def __init__(self, name: str, lease: Lease) -> None:
        until = datetime.fromtimestamp(lease.expires_at, UTC).strftime("%H:%M UTC")
        super().__init__(f"{name} is leased to {lease.user} until {until}; take another image, "
                         "or ask an admin to release it")
        self.lease = lease


def active_leases(store: ProjectStore, clock=time.time) -> dict[int, Lease]:
    """The live leases, by image id."""
    rows = store.conn.execute("SELECT leases.image_id, users.name, leases.expires_at FROM leases "
                              "JOIN users ON users.id = leases.user_id WHERE leases.expires_at > ?", (clock(),))
    return {r["image_id"]: Lease(r["image_id"], r["name"], r["expires_at"]) for r in rows}


def _live(tx, image_id: int, moment: float) -> tuple[int, Lease] | None:
    row = tx.execute("SELECT leases.user_id, users.name, leases.expires_at FROM leases JOIN users ON users.id = leases.user_id "
                     "WHERE leases.image_id = ? AND leases.expires_at > ?", (image_id, moment)).fetchone()
    return (row["user_id"], Lease(image_id, row["name"], row["expires_at"])) if row else None


def take(store: ProjectStore, image_id: int, name: str, user: User, minutes: float, clock=time.time) -> Lease:
    """Lease an image to ``user`` (or renew the user's lease); ``LeaseConflict`` when someone
    else holds it. ``name`` is the image's name, for the message."""
    moment = clock()
    with store.transaction() as tx:
        live = _live(tx, image_id, moment)
        if live and live[0] != user.id:
            raise LeaseConflict(name, live[1])
        tx.execute("INSERT OR REPLACE INTO leases (image_id, user_id, leased_at, expires_at) VALUES (?, ?, ?, ?)",
                   (image_id, user.id, moment, moment + minutes * 60))
    return Lease(image_id, user.name, moment + minutes * 60)


def holder(store: ProjectStore, image_id: int, clock=time.time) -> Lease | None:
    """The live lease of an image, or None."""
    live = _live(store.conn, image_id, clock())
    return live[1] if live else None


def release(store: ProjectStore, image_id: int, name: str, user: User, clock=time.time) -> None:
    """End a lease: its holder's own, or anyone's for an admin (``LeaseConflict`` otherwise)."""
    with store.transaction() as tx:
        live = _live(tx, image_id, clock())
        if live and live[0] != user.id and not user.admin:
            raise LeaseConflict(name, live[1])
        tx.execute("DELETE FROM leases WHERE image_id = ?", (image_id,))


def drop(store: ProjectStore, image_ids: list[int]) -> None:
    """Forget the leases of these images (they were labelled)."""
    with store.transaction() as tx:
        tx.executemany("DELETE FROM leases WHERE image_id = ?", [(i,) for i in image_ids])
