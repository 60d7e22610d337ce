"""What every route of the labelling app shares: its settings (``AppSettings``), the state of
the served project (``Context``), the endpoint wrapper that checks the session, the CSRF token
and the role and turns errors into JSON answers (``endpoint``), and small helpers."""

from __future__ import annotations

import errno
import sqlite3
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, overload
from urllib.parse import quote, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response

from crackal.active.config import ALConfig
from crackal.active.store import ImageRecord, ProjectStore
from crackal.app import accounts, leases
from crackal.app.http import HTTPError
from crackal.app.worker import RoundWorker
from crackal.errors import CrackalError

STATIC = Path(__file__).parents[1] / "static"
COOKIE = "crackal_session"
CSRF_HEADER = "x-csrf-token"
MAX_UPLOAD = 64 * 2**20  # bytes of one request body (a 4000x3000 mask PNG is well under 1 MB)
PAGES = {"queue": "queue.html", "dashboard": "dashboard.html", "review": "review.html"}


@dataclass
class AppSettings:
    """How the app runs: lease and session lengths, the largest request body, how long a label
    write waits for the project's write lock, the clock (tests move it) and the worker's command."""

    lease_minutes: float = 30.0
    session_hours: float = 12.0
    max_upload_bytes: int = MAX_UPLOAD
    lock_wait: float = 10.0
    secure_cookies: bool = False  # set behind an HTTPS proxy
    clock: Callable[[], float] = time.time
    worker_command: list[str] | None = None


@dataclass
class Context:
    """The state of one served project."""

    root: Path
    settings: AppSettings
    worker: RoundWorker
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    skipped: dict[int, dict[int, float]] = field(default_factory=dict)  # user id -> image id -> when
    thumbs: OrderedDict[int, bytes] = field(default_factory=OrderedDict)
    lease_pages: dict[int, str] = field(default_factory=dict)  # image id -> the editor page holding its lease
    assist: OrderedDict = field(default_factory=OrderedDict)  # (image id, round) -> crackal.app.assist.AssistSource
    damaged: list | None = None  # crackal.active.health.DamagedLabel found at start-up; None while checking
    guard: threading.Lock = field(default_factory=threading.Lock)  # the dicts above

    @contextmanager
    def store(self) -> Iterator[tuple[ProjectStore, ALConfig]]:
        """The project's store (one connection per request) and settings."""
        with ProjectStore(self.root) as store:
            yield store, ALConfig.from_dict(store.settings())

    def session(self, token: str | None) -> tuple[accounts.User, str] | None:
        """The user and CSRF token of a request's session cookie."""
        with self.store() as (store, _):
            return accounts.session_user(store, token, self.settings.clock)


def _same_origin(request: Request) -> bool:
    """A write's Origin (when the browser sends one) must be this server."""
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")


Handler = Callable[[Context, accounts.User, Request, bytes], object]  # a route behind a session: its user
OpenHandler = Callable[[Context, "accounts.User | None", Request, bytes], object]  # a route without one: None
Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


@overload
def endpoint(handler: Handler, *, session: Literal[True] = True, write: bool = False, admin: bool = False,
             page: bool = False) -> Endpoint: ...


@overload
def endpoint(handler: OpenHandler, *, session: Literal[False], write: bool = False, admin: bool = False,
             page: bool = False) -> Endpoint: ...


def endpoint(handler: Handler | OpenHandler, *, session: bool = True, write: bool = False, admin: bool = False,
             page: bool = False) -> Endpoint:
    """A Starlette endpoint around ``handler(ctx, user, request, body)``, which runs in a worker
    thread: the session (401, or a redirect to the login for a page), the CSRF token of a write
    (403), the admin role (403); errors become JSON ``{"error": ...}`` answers (``HTTPError``: its
    status; a lease held by someone else: 409; any other ``CrackalError``: 400). The answer's
    ``Server-Timing`` header says how long the server took."""

    async def view(request: Request) -> Response:
        started = time.perf_counter()
        response = await answer(request)
        response.headers["server-timing"] = f"app;dur={1000 * (time.perf_counter() - started):.1f}"
        return response

    async def answer(request: Request) -> Response:
        ctx: Context = request.app.state.ctx
        try:
            user: accounts.User | None = None
            if session:
                found = await run_in_threadpool(ctx.session, request.cookies.get(COOKIE))
                if found is None:
                    if page:
                        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
                    raise HTTPError(401, "sign in first (your session is missing or has expired)")
                user, csrf = found
                if write and not _same_origin(request):
                    raise HTTPError(403, f"cross-site request refused: it comes from {request.headers.get('origin')}, "
                                         f"not from this server ({request.headers.get('host')}); open the app at its own address")
                if write and not accounts.csrf_ok(csrf, request.headers.get(CSRF_HEADER)):
                    raise HTTPError(403, "missing or wrong CSRF token; reload the page")
                if admin and not user.admin:
                    raise HTTPError(403, "only an admin can do this")
            elif write and not _same_origin(request):
                raise HTTPError(403, "cross-site request refused")
            body = await request.body() if request.method in ("POST", "PUT", "DELETE") else b""
            if user is not None:
                result = await run_in_threadpool(handler, ctx, user, request, body)
            else:  # session=False: the overloads took an OpenHandler
                result = await run_in_threadpool(cast(OpenHandler, handler), ctx, None, request, body)
        except HTTPError as exc:
            return JSONResponse({"error": exc.message}, exc.status)
        except leases.LeaseConflict as exc:
            return JSONResponse({"error": str(exc), "leased_by": exc.lease.user}, 409)
        except CrackalError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        except (OSError, sqlite3.Error) as exc:
            message = disk_full_message(exc)
            if message is None:
                raise
            say(f"{request.method} {request.url.path}: {message}")
            return JSONResponse({"error": message}, 507)
        if isinstance(result, Response):
            return result
        response = JSONResponse(result)
        response.headers["cache-control"] = "no-store"
        return response

    for check, value in (("session", session), ("write", write), ("admin", admin)):
        setattr(view, check, value)  # what it checks (tests read it)
    return view


def say(message: str) -> None:
    """A line on the server's standard error (the terminal of ``crackal serve``); a full disk
    under the log is not an error of the request."""
    with suppress(OSError):
        print(f"crackal serve: {message}", file=sys.stderr, flush=True)


DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # no space, over quota, over a file-size limit


def disk_full_message(exc: BaseException) -> str | None:
    """The answer's message when a write failed for want of disk space (a full disk, a quota, a
    file-size limit; SQLite's "database or disk is full" or a write I/O error), else None. The
    writes are atomic (``store_labels``, SQLite transactions), so nothing was stored."""
    if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
        cause = exc.strerror or str(exc)
    elif isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) is not None and (
            exc.sqlite_errorcode == sqlite3.SQLITE_FULL or exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_IOERR):
        cause = f"the database could not be written: {exc}"
    else:
        return None
    return (f"the disk of the server is full ({cause}); nothing stored. Keep this page open, ask the server's admin "
            "to free space, then submit again")


def image_of(store: ProjectStore, request: Request) -> ImageRecord:
    """The image named by the integer id in the URL (the only way a request names a file)."""
    found = store.images("id = ?", (int(request.path_params["image_id"]),))
    if not found:
        raise HTTPError(404, "no such image")
    return found[0]


def queue_positions(store: ProjectStore) -> dict[int, tuple[int, int, float | None]]:
    """Queued image id -> (rank, round that queued it, score)."""
    return {record.id: (rank, round_, score) for rank, (record, round_, score) in enumerate(store.queue())}


def static_page(name: str) -> Response:
    """A file of the app's own ``static/`` folder (pages revalidate: a new version shows at once)."""
    return FileResponse(STATIC / name, headers={"cache-control": "no-cache"})
