"""``crackal serve``: the labelling web app and dashboard of a project (and its users);
``crackal serve-ml``: a project as Label Studio's ML backend (docs/label-studio-ml-backend.md)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from crackal.cli.options import console
from crackal.errors import CrackalError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def serve_ml(
    project: Annotated[Path, typer.Argument(help="Project folder (project.db, labels/, rounds/).")],
    host: Annotated[str, typer.Option(help="Address to listen on: 127.0.0.1 answers this machine only; 0.0.0.0 every network (then give --basic-auth).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port; Label Studio's model URL is http://HOST:PORT.")] = 9090,
    basic_auth: Annotated[str | None, typer.Option(envvar="CRACKAL_BASIC_AUTH", help="USER:PASS that every request must give (HTTP basic auth; Label Studio: the model's Basic Authentication). Better set in $CRACKAL_BASIC_AUTH than on the command line.")] = None,
    max_body_mb: Annotated[float, typer.Option(help="Largest request body accepted, in MB (413 beyond).")] = 64,
    document_root: Annotated[Path | None, typer.Option(envvar="LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT", help="Where Label Studio's /data/local-files/?d= paths start (as Label Studio's own variable); only images under it are read (default /).")] = None,
) -> None:
    """Serve a project to Label Studio as its ML backend: pre-annotations from the latest round, annotations into the project, rounds started from Label Studio."""
    import logging

    import uvicorn

    from crackal.app.ml_backend import create_ml_backend

    credentials = None
    if basic_auth is not None:
        user, colon, password = basic_auth.partition(":")
        if not (user and colon and password):
            raise CrackalError("--basic-auth takes USER:PASS, both non-empty (e.g. labelstudio:a-long-secret)")
        credentials = (user, password)
    if max_body_mb <= 0:
        raise CrackalError(f"--max-body-mb must be positive; got {max_body_mb:g}")
    app = create_ml_backend(project, credentials, int(max_body_mb * 2 ** 20), document_root)
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    console.print(f"crackal ML backend of {project} at {url}; in Label Studio: project Settings > Model > Connect Model, "
                  f"Backend URL {url}{' with Basic Authentication' if credentials else ''}", highlight=False, soft_wrap=True)
    if host not in LOOPBACK and credentials is None:
        console.print(f"warning: listening on {host} without --basic-auth: anyone who reaches this port can read predictions "
                      "and write labels into the project", style="yellow", highlight=False)
    log = logging.getLogger("crackal.app")  # rounds started, annotations imported, errors answered: while it serves
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s crackal: %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        uvicorn.run(app, host=host, port=port, log_level="info")
    finally:
        log.removeHandler(handler)


def serve(
    project: Annotated[Path, typer.Argument(help="Project folder (made by 'crackal al init').")],
    host: Annotated[str, typer.Option(help="Address to listen on: 127.0.0.1 serves this machine only; 0.0.0.0 every network it is on (put HTTPS in front).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    lease_minutes: Annotated[float, typer.Option(help="How long an opened image stays reserved for its labeller (renewed while the editor is open).")] = 30.0,
    add_user: Annotated[str | None, typer.Option(help="Add this user instead of serving (the password is asked for, or read from standard input with --password-stdin).")] = None,
    role: Annotated[str, typer.Option(help="With --add-user: labeller, or admin (starts rounds, releases leases).")] = "labeller",
    password_stdin: Annotated[bool, typer.Option(help="With --add-user: read the password from the first line of standard input.")] = False,
    replace: Annotated[bool, typer.Option(help="With --add-user: set a new password and role of an existing user (signs them out).")] = False,
    list_sessions: Annotated[bool, typer.Option(help="List the live sessions (public id, user, role, since, until) instead of serving.")] = False,
    revoke_sessions: Annotated[str | None, typer.Option(help="End every session of this user (or the session with this public id from --list-sessions) instead of serving.")] = None,
    secure_cookies: Annotated[bool, typer.Option(help="Mark the session cookie Secure (sent over HTTPS only): set it behind a reverse proxy that terminates HTTPS.")] = False,
) -> None:
    """Serve the project's labelling app and dashboard in the browser (http://127.0.0.1:8765).

    First add users: crackal serve PROJECT --add-user NAME --role admin
    """
    from crackal import api

    if list_sessions or revoke_sessions is not None:
        _sessions(project, list_sessions, revoke_sessions)
        return
    if add_user is None:
        if password_stdin or replace:
            raise typer.BadParameter("--password-stdin and --replace go with --add-user NAME")
        api.serve(project, host=host, port=port, lease_minutes=lease_minutes, secure_cookies=secure_cookies,
                  on_ready=lambda url: console.print(f"serving {project} at {url} (open it in a browser; Ctrl+C stops)"))
        return
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    console.print(api.add_user(project, add_user, password, role, replace))


def _sessions(project: Path, show: bool, revoke: str | None) -> None:
    """--list-sessions and --revoke-sessions NAME|ID."""
    from datetime import UTC, datetime

    from rich.table import Table

    from crackal import api

    if revoke is not None:
        users = {row["user"] for row in api.list_sessions(project)}
        is_id = revoke not in users and revoke in {row["id"] for row in api.list_sessions(project)}
        try:
            ended = api.revoke_sessions(project, ids=[revoke]) if is_id else api.revoke_sessions(project, user=revoke)
        except CrackalError:
            raise CrackalError(f"{revoke} is neither a user of {project} nor the id of a live session "
                               "(see --list-sessions)") from None
        console.print(f"ended {ended} session{'' if ended == 1 else 's'} of {'session ' if is_id else ''}{revoke}")
    if show:
        table = Table(title=f"{project}: live sessions")
        for column in ("id", "user", "role", "signed in", "expires"):
            table.add_column(column)
        for row in api.list_sessions(project):
            when = [datetime.fromtimestamp(row[k], UTC).strftime("%Y-%m-%d %H:%M UTC") for k in ("created_at", "expires_at")]
            table.add_row(row["id"], row["user"], row["role"], *when)
        console.print(table)
