"""``crackal serve-ml PROJECT``: a project as Label Studio's ML backend (docs/label-studio-ml-backend.md)."""

from __future__ import annotations

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
                  f"Backend URL {url}{' with Basic Authentication' if credentials else ''}", highlight=False)
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
