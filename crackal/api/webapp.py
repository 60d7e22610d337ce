"""The labelling web app from Python: serve a project, add its users, see and end their sessions."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from pathlib import Path


def add_user(project: str | Path, name: str, password: str | None = None, role: str = "labeller", replace: bool = False) -> str:
    """Create a user of the project's web app (``role``: labeller or admin; ``replace`` sets a new
    password and role of an existing one); the password is asked for when not given. Returns a
    line saying what was done."""
    from crackal.active.store import ProjectStore
    from crackal.app.accounts import add_user as add

    with ProjectStore(project) as store:
        if password is None:
            password = getpass.getpass(f"password for {name}: ")
            if getpass.getpass("again: ") != password:
                from crackal.errors import CrackalError

                raise CrackalError("the two passwords differ; nothing changed")
        user = add(store, name, password, role, replace)
    return f"{'updated' if replace else 'added'} {user.role} {user.name} to {project}"


def list_sessions(project: str | Path) -> list[dict]:
    """The live sessions of the project's web app, oldest first: ``id`` (a public id, not the
    token), ``user``, ``role``, ``created_at`` and ``expires_at`` (Unix times)."""
    from crackal.active.store import ProjectStore
    from crackal.app.accounts import list_sessions as live

    with ProjectStore(project) as store:
        return live(store)


def revoke_sessions(project: str | Path, user: str | None = None, ids: list[str] | None = None) -> int:
    """End every session of ``user``, or the sessions with these public ids (``list_sessions``);
    their users must sign in again. Returns how many ended."""
    from crackal.active.store import ProjectStore
    from crackal.app.accounts import revoke_sessions as revoke
    from crackal.errors import CrackalError

    if (user is None) == (ids is None):
        raise CrackalError("name a user or give session ids (one of the two)")
    with ProjectStore(project) as store:
        return revoke(store, ids=ids, user=user)


def serve(project: str | Path, host: str = "127.0.0.1", port: int = 8765, lease_minutes: float = 30.0,
          on_ready: Callable[[str], None] | None = None, secure_cookies: bool = False) -> None:
    """Serve the project's labelling app and dashboard at ``http://HOST:PORT`` until interrupted.
    It listens on this machine only by default (``127.0.0.1``); ``on_ready`` gets the address
    once the project and the options are checked. ``secure_cookies``: browsers send the session
    cookie over HTTPS only (set it behind a reverse proxy that terminates HTTPS)."""
    from crackal.active.store import ProjectStore
    from crackal.app.accounts import list_users
    from crackal.app.server import serve as run
    from crackal.errors import CrackalError, check_options

    check_options([(1 <= port <= 65535, "port", f"must be 1..65535, got {port}"),
                   (lease_minutes > 0, "lease_minutes", f"must be > 0, got {lease_minutes}")])
    with ProjectStore(project) as store:
        users = list_users(store)
    if not users:
        raise CrackalError(f"{project} has no users yet, so nobody could sign in: add one first with "
                           f"'crackal serve {project} --add-user NAME --role admin'")
    if on_ready:
        on_ready(f"http://{host}:{port}")
    run(project, host, port, lease_minutes, secure_cookies=secure_cookies)
