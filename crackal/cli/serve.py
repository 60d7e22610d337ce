"""``crackal serve``: the labelling web app and dashboard of a project (and its users)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from crackal.cli.options import console


def serve(
    project: Annotated[Path, typer.Argument(help="Project folder (made by 'crackal al init').")],
    host: Annotated[str, typer.Option(help="Address to listen on: 127.0.0.1 serves this machine only; 0.0.0.0 every network it is on (put HTTPS in front).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    lease_minutes: Annotated[float, typer.Option(help="How long an opened image stays reserved for its labeller (renewed while the editor is open).")] = 30.0,
    add_user: Annotated[str | None, typer.Option(help="Add this user instead of serving (the password is asked for, or read from standard input with --password-stdin).")] = None,
    role: Annotated[str, typer.Option(help="With --add-user: labeller, or admin (starts rounds, releases leases).")] = "labeller",
    password_stdin: Annotated[bool, typer.Option(help="With --add-user: read the password from the first line of standard input.")] = False,
    replace: Annotated[bool, typer.Option(help="With --add-user: set a new password and role of an existing user (signs them out).")] = False,
) -> None:
    """Serve the project's labelling app and dashboard in the browser (http://127.0.0.1:8765).

    First add users: crackal serve PROJECT --add-user NAME --role admin
    """
    from crackal import api

    if add_user is None:
        if password_stdin or replace:
            raise typer.BadParameter("--password-stdin and --replace go with --add-user NAME")
        api.serve(project, host=host, port=port, lease_minutes=lease_minutes,
                  on_ready=lambda url: console.print(f"serving {project} at {url} (open it in a browser; Ctrl+C stops)"))
        return
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    console.print(api.add_user(project, add_user, password, role, replace))
