"""The labelling web app: ``create_app(project)`` is a Starlette application, served by
``crackal serve`` under uvicorn (``serve``).

Pages (plain HTML + JavaScript from ``static/``): login, the queue, the mask editor (the box
editor in detection projects), the dashboard and the prediction review. Every page and API
call except the login needs a session cookie (HttpOnly, SameSite=Strict); every write also
needs the session's CSRF token in the ``X-CSRF-Token`` header. Images are addressed by their
database id only: no file name or path is ever taken from a request. Labels go through
``crackal.active.labels.store_labels``, the path ``crackal al import`` takes (same checks, same
atomic write), under the project's write lock. A write the disk has no room for is answered 507
(nothing stored); at start-up the leftovers of interrupted writes are removed and every current
label file is read, the damaged ones reported on standard error and in ``/api/dashboard``
(``crackal.active.health``). Failed sign-ins are throttled per name in ``project.db``
(``crackal.app.throttle``).

API (JSON unless noted):

```
POST /api/login {name, password}          GET  /api/me             POST /api/logout
GET  /api/queue                            POST /api/queue/next     (lease the next free image)
GET  /api/images/ID                        GET  /api/images/ID/image | /thumb (image bytes)
GET  /api/images/ID/prelabel               (mask: zlib-compressed class indices, row-major; boxes: JSON)
POST /api/images/ID/lease | DELETE ...     POST /api/images/ID/skip
POST /api/images/ID/mask  (PNG of class indices)       POST /api/images/ID/boxes {boxes: [{x0, y0, x1, y1, label}]}
     (both take the page's measured effort in an X-Label-Effort header: {active_seconds, strokes, undos, prelabel})
GET  /api/sessions (admin)                 DELETE /api/sessions/ID (admin: end a session by its public id)
GET  /api/dashboard                        GET  /api/effort (measured labelling time)
GET  /api/worker                           POST /api/worker/start (admin)
GET  /api/review                           GET  /api/review/ID/LAYER (PNG: prediction, probability, uncertainty, truth)
POST /api/images/ID/trace {points: [[x, y], ...]}      -> {path: [[x, y], ...], source}   (lease holder; stores nothing)
POST /api/images/ID/fill {x, y, tolerance?}            -> {x0, y0, x1, y1, pixels, mask, source}   (as trace)
     (trace: the cheapest path through the points, pixels (x, y) in order; fill: the region at (x, y) in its
      box, x1 and y1 exclusive, mask = base64 of the zlib-compressed 0/1 bytes of the box, row-major)
```
"""

from __future__ import annotations

import errno
import io
import re
import secrets
import sqlite3
import sys
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import numpy as np
from PIL import Image, ImageOps
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from crackal.active.config import ALConfig
from crackal.active.effort import IDLE_SECONDS, Effort, effort_summary, parse_effort, seconds_per_image
from crackal.active.lock import project_lock
from crackal.active.store import ImageRecord, ProjectStore
from crackal.app import accounts, leases, throttle
from crackal.app.worker import RoundWorker
from crackal.data.boxes import ImageBoxes, fit_to_image
from crackal.data.io import image_size
from crackal.errors import CrackalError
from crackal.inference.render import class_color

STATIC = Path(__file__).parent / "static"
COOKIE = "crackal_session"
CSRF_HEADER = "x-csrf-token"
EFFORT_HEADER = "x-label-effort"
MAX_UPLOAD = 64 * 2**20  # bytes of one request body (a 4000x3000 mask PNG is well under 1 MB)
MAX_BOXES = 10_000
THUMB = 160
PAGES = {"queue": "queue.html", "dashboard": "dashboard.html", "review": "review.html"}
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"),
]


class HTTPError(Exception):
    """An answer other than 200, with a message for the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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
        store = ProjectStore(self.root)
        try:
            yield store, ALConfig.from_dict(store.settings())
        finally:
            store.close()

    def session(self, token: str | None) -> tuple[accounts.User, str] | None:
        """The user and CSRF token of a request's session cookie."""
        with self.store() as (store, _):
            return accounts.session_user(store, token, self.settings.clock)


# --- request handling -----------------------------------------------------------------------------


class _TooLarge(Exception):
    pass


class Guard:
    """ASGI middleware: a body larger than ``limit`` gets 413 (by its Content-Length before it is
    read, or as soon as the bytes received pass the limit); every answer gets the security headers."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        """Serve one request (ASGI)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", []), *SECURITY_HEADERS]}
            await send(message)

        length = dict(scope.get("headers") or []).get(b"content-length")
        try:
            if length is not None and int(length) > self.limit:
                raise _TooLarge
        except ValueError:
            await _plain(send_with_headers, 400, "bad Content-Length")
            return
        except _TooLarge:
            await _plain(send_with_headers, 413, self._message())
            return
        received = 0

        async def limited() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send_with_headers)
        except _TooLarge:
            if not started:
                await _plain(send_with_headers, 413, self._message())

    def _message(self) -> str:
        return f"the request is larger than the server's limit of {self.limit:,} bytes"


async def _plain(send, status: int, message: str) -> None:
    body = JSONResponse({"error": message}).body
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _same_origin(request: Request) -> bool:
    """A write's Origin (when the browser sends one) must be this server."""
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")


Handler = Callable[[Context, "accounts.User | None", Request, bytes], object]


def endpoint(handler: Handler, *, session: bool = True, write: bool = False, admin: bool = False, page: bool = False):
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
            user = None
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
            result = await run_in_threadpool(handler, ctx, user, request, body)
        except HTTPError as exc:
            return JSONResponse({"error": exc.message}, exc.status)
        except leases.LeaseConflict as exc:
            return JSONResponse({"error": str(exc), "leased_by": exc.lease.user}, 409)
        except CrackalError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        except (OSError, sqlite3.Error) as exc:
            message = _disk_full(exc)
            if message is None:
                raise
            _say(f"{request.method} {request.url.path}: {message}")
            return JSONResponse({"error": message}, 507)
        if isinstance(result, Response):
            return result
        response = JSONResponse(result)
        response.headers["cache-control"] = "no-store"
        return response

    view.session, view.write, view.admin = session, write, admin  # type: ignore[attr-defined]  # what it checks (tests read it)
    return view


def _say(message: str) -> None:
    """A line on the server's standard error (the terminal of ``crackal serve``); a full disk
    under the log is not an error of the request."""
    with suppress(OSError):
        print(f"crackal serve: {message}", file=sys.stderr, flush=True)


DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # no space, over quota, over a file-size limit


def _disk_full(exc: BaseException) -> str | None:
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


def _json(body: bytes) -> dict:
    import json

    try:
        value = json.loads(body or b"{}")
    except ValueError:
        raise HTTPError(400, "the request body is not JSON") from None
    if not isinstance(value, dict):
        raise HTTPError(400, "the request body must be a JSON object")
    return value


def _record(store: ProjectStore, request: Request) -> ImageRecord:
    """The image named by the integer id in the URL (the only way a request names a file)."""
    found = store.images("id = ?", (int(request.path_params["image_id"]),))
    if not found:
        raise HTTPError(404, "no such image")
    return found[0]


def _queued(store: ProjectStore) -> dict[int, tuple[int, int, float | None]]:
    """Queued image id -> (rank, round that queued it, score)."""
    return {record.id: (rank, round_, score) for rank, (record, round_, score) in enumerate(store.queue())}


def _static(name: str) -> Response:
    return FileResponse(STATIC / name, headers={"cache-control": "no-cache"})


def _colours(config: ALConfig) -> list[str]:
    return ["#000000"] + ["#" + "".join(f"{int(v):02x}" for v in class_color(i)) for i in range(1, len(config.class_names))]


# --- accounts ---------------------------------------------------------------------------------------


def login(ctx: Context, _user, request: Request, body: bytes) -> Response:
    """Check a name and password; set the session cookie."""
    data = _json(body)
    name, password = str(data.get("name", "")), str(data.get("password", ""))
    with ctx.store() as (store, _):
        wait = throttle.attempt(store, name, clock=ctx.settings.clock)  # kept in project.db: a restart keeps it
        if wait:
            raise HTTPError(429, f"too many failed sign-ins for {name[:64]}; wait {int(-(-wait // 60))} minutes "
                                 f"({throttle.LIMIT} within {throttle.WINDOW / 60:.0f} minutes make a name wait)")
        user = accounts.authenticate(store, name, password)
        if user is None:
            raise HTTPError(401, "wrong name or password")
        throttle.succeeded(store, name)
        token, csrf = accounts.new_session(store, user, ctx.settings.session_hours, ctx.settings.clock)
    response = JSONResponse({"name": user.name, "role": user.role, "csrf": csrf})
    response.set_cookie(COOKIE, token, max_age=int(ctx.settings.session_hours * 3600), httponly=True, samesite="strict",
                        secure=ctx.settings.secure_cookies, path="/")
    return response


def logout(ctx: Context, _user, request: Request, body: bytes) -> Response:
    """End the session."""
    with ctx.store() as (store, _):
        accounts.end_session(store, request.cookies.get(COOKIE))
    response = JSONResponse({"ok": True})
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response


def sessions_list(ctx: Context, user: accounts.User, request: Request, body: bytes) -> dict:
    """The live sessions (admins): public id, user, role, opened and expiring (Unix times), and
    ``current``, the caller's own id. Never a token or its hash."""
    with ctx.store() as (store, _):
        return {"sessions": accounts.list_sessions(store, ctx.settings.clock),
                "current": accounts.current_session_id(request.cookies.get(COOKIE))}


def session_revoke(ctx: Context, user: accounts.User, request: Request, body: bytes) -> dict:
    """End a session by its public id (admins); its user must sign in again."""
    with ctx.store() as (store, _):
        if not accounts.revoke_sessions(store, [request.path_params["session_id"]]):
            raise HTTPError(404, "no such session (it has ended or expired)")
    return {"ok": True}


def me(ctx: Context, user: accounts.User, request: Request, body: bytes) -> dict:
    """Who is signed in, the CSRF token, and what the pages need of the project."""
    found = ctx.session(request.cookies.get(COOKIE))
    assert found is not None  # the endpoint checked the session
    with ctx.store() as (_, config):
        return {"name": user.name, "role": user.role, "csrf": found[1], "project": ctx.root.name,
                "task": config.task, "class_names": config.class_names, "colours": _colours(config),
                "lease_minutes": ctx.settings.lease_minutes, "effort_idle_seconds": IDLE_SECONDS}


# --- queue and leases --------------------------------------------------------------------------------


def queue(ctx: Context, user: accounts.User, request: Request, body: bytes) -> dict:
    """The images waiting for labels, in acquisition order, with who is on each."""
    with ctx.store() as (store, _):
        live = leases.active_leases(store, ctx.settings.clock)
        skipped = ctx.skipped.get(user.id, {})
        items = []
        for rank, (record, round_, score) in enumerate(store.queue()):
            lease = live.get(record.id)
            items.append({"id": record.id, "name": record.name, "rank": rank, "round": round_, "score": score,
                          "leased_by": lease.user if lease else None, "lease_expires": lease.expires_at if lease else None,
                          "mine": bool(lease and lease.user == user.name), "skipped": record.id in skipped})
        return {"items": items, "labelled": len(store.labelled())}


def next_image(ctx: Context, user: accounts.User, request: Request, body: bytes) -> dict:
    """Lease the next image to label: one this user already holds, else the first free one in
    acquisition order that they did not skip, else the one they skipped longest ago."""
    with ctx.store() as (store, _):
        live = leases.active_leases(store, ctx.settings.clock)
        skipped = dict(ctx.skipped.get(user.id, {}))
        queued = [record for record, _, _ in store.queue()]
        mine = [r for r in queued if r.id in live and live[r.id].user == user.name and r.id not in skipped]
        free = [r for r in queued if r.id not in live and r.id not in skipped]
        later = sorted((r for r in queued if r.id in skipped and (r.id not in live or live[r.id].user == user.name)),
                       key=lambda r: skipped[r.id])
        for record in mine + free + later:
            try:
                lease = leases.take(store, record.id, record.name, user, ctx.settings.lease_minutes, ctx.settings.clock)
            except leases.LeaseConflict:
                continue  # taken a moment ago by someone else
            if record.id not in _queued(store):  # labelled a moment ago (its lease is dropped just after)
                leases.release(store, record.id, record.name, user, ctx.settings.clock)
                continue
            with ctx.guard:
                ctx.skipped.get(user.id, {}).pop(record.id, None)
            return {"id": record.id, "name": record.name, "lease_expires": lease.expires_at}
        message = "the queue is empty: every selected image is labelled" if not queued else \
            "every queued image is being labelled by someone else"
        return {"id": None, "message": message}


def take_lease(ctx: Context, user: accounts.User, request: Request, body: bytes) -> dict:
    """Lease (or renew the lease of) a queued image; 409 when someone else holds it."""
    with ctx.store() as (store, _):
        record = _record(store, request)
        if record.id not in _queued(store):
            raise HTTPError(409, f"{record.name} is not in the labelling queue"
                                 + (f" (labelled by {record.labelled_by})" if record.labelled else ""))
        lease = leases.take(store, record.id, record.name, user, ctx.settings.lease_minutes, ctx.settings.clock)
    page = request.headers.get("x-lease-page")
    if page:  # the editor page holding it (see release_lease)
        with ctx.guard:
            ctx.lease_pages[record.id] = page[:64]
    return {"id": record.id, "leased_by": lease.user, "lease_expires": lease.expires_at}


def release_lease(ctx: Context, user: accounts.User, request: Request, body: bytes) -> dict:
    """Release a lease: one's own, or anyone's for an admin; with ``?if_mine=1`` (the editor
    leaving its page) only one's own, and no error when it is not; with ``&page=ID`` also only
    while that page holds it (a reloaded editor's new page has renewed it under its own id)."""
    with ctx.store() as (store, _):
        record = _record(store, request)
        if request.query_params.get("if_mine"):
            lease = leases.holder(store, record.id, ctx.settings.clock)
            with ctx.guard:
                holder_page = ctx.lease_pages.get(record.id)
            page = request.query_params.get("page")
            if lease is None or lease.user != user.name or (page and holder_page and holder_page != page):
                return {"ok": True, "released": False}
        leases.release(store, record.id, record.name, user, ctx.settings.clock)
        return {"ok": True, "released": True}


def skip(ctx: Context, user: accounts.User, request: Request, body: bytes) -> dict:
    """Put an image aside: release its lease; it comes back to this user after the others."""
    with ctx.store() as (store, _):
        record = _record(store, request)
        leases.release(store, record.id, record.name, user, ctx.settings.clock)
    with ctx.guard:
        ctx.skipped.setdefault(user.id, {})[record.id] = ctx.settings.clock()
    return {"ok": True}


# --- images -------------------------------------------------------------------------------------------


def image_info(ctx: Context, user: accounts.User, request: Request, body: bytes) -> dict:
    """An image's name, size, place in the queue, lease and current label."""
    with ctx.store() as (store, _):
        record = _record(store, request)
        height, width = image_size(record.path)
        queued = _queued(store).get(record.id)
        lease = leases.holder(store, record.id, ctx.settings.clock)
        return {"id": record.id, "name": record.name, "role": record.role, "width": width, "height": height,
                "queued": queued is not None, "rank": queued[0] if queued else None, "round": queued[1] if queued else None,
                "score": queued[2] if queued else None,
                "lease": {"user": lease.user, "expires_at": lease.expires_at, "mine": lease.user == user.name} if lease else None,
                "labelled_by": record.labelled_by, "labelled_at": record.labelled_at,
                "has_truth": record.truth_path is not None or record.label_path is not None}


def _browser_ready(path: Path) -> str | None:
    """The media type when a browser shows the file exactly as crackal reads it (8-bit PNG or
    JPEG without an EXIF rotation), else None (it is converted)."""
    try:
        with Image.open(path) as img:
            fmt, mode, orientation = img.format, img.mode, img.getexif().get(0x0112, 1)
            managed = "icc_profile" in img.info or "gamma" in img.info  # a browser would adjust the colours
    except Exception:  # noqa: BLE001 - read_image reports it properly
        return None
    # (alpha is left out: crackal drops it, a browser blends it)
    if fmt in ("PNG", "JPEG") and mode in ("L", "RGB", "P") and orientation in (1, None) and not managed:
        return "image/png" if fmt == "PNG" else "image/jpeg"
    return None


def image_bytes(ctx: Context, user: accounts.User, request: Request, body: bytes) -> Response:
    """The image as the model sees it (the file itself when a browser shows it the same way)."""
    from crackal.data.io import read_image

    with ctx.store() as (store, _):
        record = _record(store, request)
    media = _browser_ready(record.path)
    headers = {"cache-control": "private, max-age=3600"}
    if media:
        return FileResponse(record.path, media_type=media, headers=headers)
    out = io.BytesIO()
    Image.fromarray(read_image(record.path)).save(out, format="PNG", compress_level=1)
    return Response(out.getvalue(), media_type="image/png", headers=headers)


def thumbnail(ctx: Context, user: accounts.User, request: Request, body: bytes) -> Response:
    """A small JPEG of the image (kept in memory for the last 512 asked)."""
    with ctx.store() as (store, _):
        record = _record(store, request)
    with ctx.guard:
        cached = ctx.thumbs.get(record.id)
    if cached is None:
        with Image.open(record.path) as img:
            img.draft("RGB", (THUMB * 2, THUMB * 2))  # JPEG: decode at a fraction of the size
            small = ImageOps.exif_transpose(img).convert("RGB")
            small.thumbnail((THUMB, THUMB))
            out = io.BytesIO()
            small.save(out, format="JPEG", quality=85)
        cached = out.getvalue()
        with ctx.guard:
            ctx.thumbs[record.id] = cached
            while len(ctx.thumbs) > 512:
                ctx.thumbs.popitem(last=False)
    return Response(cached, media_type="image/jpeg", headers={"cache-control": "private, max-age=3600"})


def prelabel_data(ctx: Context, user: accounts.User, request: Request, body: bytes) -> Response:
    """The latest round's pre-annotation: a mask as zlib-compressed class indices (row-major,
    ``X-Width`` x ``X-Height``), or boxes as JSON; empty before the first round."""
    from crackal.app.prelabels import latest_round, prelabel

    with ctx.store() as (store, config):
        record = _record(store, request)
        found = prelabel(store, config, record)
        round_ = latest_round(store)
    height, width = image_size(record.path)
    if config.task == "detection":
        boxes = found if isinstance(found, ImageBoxes) else ImageBoxes()
        return JSONResponse({"round": round_, "boxes": [
            {"x0": float(b[0]), "y0": float(b[1]), "x1": float(b[2]), "y1": float(b[3]), "label": int(label)}
            for b, label in zip(boxes.boxes.tolist(), boxes.labels.tolist())]})
    mask = np.zeros((height, width), np.uint8) if found is None else np.asarray(found, np.uint8)
    if mask.shape != (height, width):
        raise HTTPError(500, f"the cached pre-annotation of {record.name} is {mask.shape[1]}x{mask.shape[0]}, not {width}x{height}")
    return Response(zlib.compress(mask.tobytes(), 1), media_type="application/octet-stream",
                    headers={"x-width": str(width), "x-height": str(height), "x-round": "" if round_ is None else str(round_),
                             "cache-control": "no-store"})


# --- labels ------------------------------------------------------------------------------------------------


@contextmanager
def _label_write(ctx: Context, user: accounts.User, request: Request) -> Iterator[tuple[ProjectStore, ALConfig, ImageRecord]]:
    """Under the project's write lock: the image, checked to be queued and leased to ``user``."""
    with ctx.write_lock, ctx.store() as (store, config), ExitStack() as stack:
        record = _record(store, request)
        try:
            stack.enter_context(project_lock(ctx.root, f"crackal serve ({user.name} labels {record.name})",
                                             wait=ctx.settings.lock_wait))
        except CrackalError as exc:  # a round or an import is writing the project
            raise HTTPError(409, f"{exc} (nothing stored)") from None
        record = _record(store, request)  # as it is now, under the lock
        if record.id not in _queued(store):
            raise HTTPError(409, f"{record.name} is not in the labelling queue"
                                 + (f" (labelled by {record.labelled_by} at {record.labelled_at})" if record.labelled else "")
                                 + "; nothing stored")
        lease = leases.holder(store, record.id, ctx.settings.clock)
        if lease is None or lease.user != user.name:
            held = f"it is leased to {lease.user}" if lease else "your lease has expired or was released"
            raise HTTPError(409, f"{record.name} is not leased to you ({held}); open it again to take it. Nothing stored")
        yield store, config, record


def submit_mask(ctx: Context, user: accounts.User, request: Request, body: bytes) -> dict:
    """Store a painted mask (a PNG of class indices at the image's size) as the image's label,
    through the checks and the atomic write of ``crackal al import``."""
    from crackal.active.labels import NewLabel, _checked_mask, store_labels

    if not body:
        raise HTTPError(400, "no mask in the request: send a PNG of class indices")
    effort = _effort(request)
    with _label_write(ctx, user, request) as (store, config, record):
        if config.task != "segmentation":
            raise HTTPError(400, "this is a detection project: submit boxes")
        uploads = ctx.root / ".uploads"
        uploads.mkdir(exist_ok=True)
        upload = uploads / f"{record.id}-{secrets.token_hex(8)}.png"
        source = f"the mask submitted for {record.name}"
        try:
            upload.write_bytes(body)  # a full disk: removed below, answered 507 by the endpoint
            try:
                mask_height, mask_width = image_size(upload)  # header only: refused before anything is decoded
                height, width = image_size(record.path)
                if (mask_height, mask_width) != (height, width):
                    raise CrackalError(f"{upload}: mask is {mask_width}x{mask_height} but image {record.name} is "
                                       f"{width}x{height} (width x height); label the image at its own size")
                mask = _checked_mask(record, upload, len(config.class_names))
            except CrackalError as exc:
                raise CrackalError(f"{_web_words(str(exc).replace(str(upload), source))}; send a PNG of class indices "
                                   f"0..{len(config.class_names) - 1} at the image's size, as the editor does "
                                   "(reload the page and submit again) (nothing stored)") from None
            store_labels(store, [NewLabel(record, source, mask, user.name, effort)], config.class_names)
        finally:
            upload.unlink(missing_ok=True)
        leases.drop(store, [record.id])
        return {"ok": True, "id": record.id, "name": record.name, "labelled_by": user.name,
                "defect_pixels": int((mask > 0).sum())}


def _effort(request: Request) -> Effort | None:
    """The labelling effort the page measured, from the ``X-Label-Effort`` header (a JSON object,
    see ``crackal.active.effort``); None when absent (a script's upload); 400 when malformed."""
    import json

    raw = request.headers.get(EFFORT_HEADER)
    if raw is None:
        return None
    try:
        return parse_effort(json.loads(raw))
    except ValueError:
        raise HTTPError(400, f"the {EFFORT_HEADER} header is not JSON (nothing stored)") from None
    except CrackalError as exc:
        raise HTTPError(400, f"{EFFORT_HEADER}: {exc} (nothing stored)") from None


_CLI_HINT = re.compile(r"[;,.]?\s*(\(?re-export it|JPEG masks gain|\(?or pass --|\(?pass --|label the image at).*$", re.S)


def _web_words(message: str) -> str:
    """A label check's message without its advice for the command line (``pass --binarize``...),
    which means nothing on a web page.

    >>> _web_words("x.png: unexpected mask values [0, 7]; binary masks must be 0/255 or 0/1. JPEG masks gain such values")
    'x.png: unexpected mask values [0, 7]; binary masks must be 0/255 or 0/1'
    """
    return _CLI_HINT.sub("", message)


def _boxes(data: dict, config: ALConfig, size: tuple[int, int], name: str) -> ImageBoxes:
    items = data.get("boxes")
    if not isinstance(items, list):
        raise HTTPError(400, 'send {"boxes": [{"x0": .., "y0": .., "x1": .., "y1": .., "label": ..}, ...]}')
    if len(items) > MAX_BOXES:
        raise HTTPError(400, f"{len(items)} boxes: at most {MAX_BOXES} per image")
    names = config.class_names
    coords, labels = [], []
    for number, item in enumerate(items, start=1):
        try:
            box = [float(item[k]) for k in ("x0", "y0", "x1", "y1")]
            label = item.get("label", 1)
            index = names.index(label) if isinstance(label, str) else int(label)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise CrackalError(f"box {number} of {name}: expected numbers x0, y0, x1, y1 and a label (a class name or "
                               f"index); got {str(item)[:80]} (nothing stored)") from None
        if not np.isfinite(box).all():
            raise CrackalError(f"box {number} of {name} has a coordinate that is not a number (nothing stored)")
        if not 1 <= index < len(names) or (isinstance(label, float) and label != index):
            raise CrackalError(f"box {number} of {name}: label {label!r} is not a defect class "
                               f"({', '.join(names[1:])}, or 1..{len(names) - 1}) (nothing stored)")
        coords.append(box)
        labels.append(index)
    boxes = ImageBoxes(np.array(coords, np.float32).reshape(-1, 4), np.array(labels, np.int64))
    try:
        return fit_to_image(boxes, size, "the submitted boxes", name)
    except CrackalError as exc:
        raise CrackalError(f"{exc} (nothing stored)") from None


def submit_boxes(ctx: Context, user: accounts.User, request: Request, body: bytes) -> dict:
    """Store drawn boxes as the image's label (a VOC file, as ``crackal al import`` writes)."""
    from crackal.active.labels import NewLabel, store_labels

    data = _json(body)
    effort = _effort(request)
    with _label_write(ctx, user, request) as (store, config, record):
        if config.task != "detection":
            raise HTTPError(400, "this is a segmentation project: submit a mask")
        boxes = _boxes(data, config, image_size(record.path), record.name)
        store_labels(store, [NewLabel(record, f"the boxes submitted for {record.name}", boxes, user.name, effort)],
                     config.class_names)
        leases.drop(store, [record.id])
        return {"ok": True, "id": record.id, "name": record.name, "labelled_by": user.name, "boxes": len(boxes)}


# --- dashboard, worker, review --------------------------------------------------------------------------


def dashboard_data(ctx: Context, user: accounts.User, request: Request, body: bytes) -> dict:
    """Rounds, curves, class balance, labellers, cost, stopping advice (see ``crackal.app.dashboard``)."""
    from crackal.app.dashboard import dashboard

    with ctx.store() as (store, config):
        data = dashboard(store, config)
    data["effort"] = _visible(data["effort"], user)
    damaged = {"damaged_labels": [item.to_dict() for item in ctx.damaged or []], "labels_checked": ctx.damaged is not None}
    return {**data, "worker": ctx.worker.status(), "admin": user.admin, **damaged}


def _visible(effort: dict, user: accounts.User) -> dict:
    """What a user may see of the measured times: everyone's for an admin; for a labeller the
    project's medians and their own times, not a colleague's."""
    if user.admin:
        return effort
    return {**effort, "labellers": [row for row in effort["labellers"] if row["name"] == user.name],
            **({"labels": [row for row in effort["labels"] if row["labelled_by"] == user.name]} if "labels" in effort else {})}


def effort_data(ctx: Context, user: accounts.User, request: Request, body: bytes) -> dict:
    """The measured labelling time: the summary (see ``crackal.active.effort``), the seconds per
    image the cost figures use and where it comes from, and every measured label (a labeller's
    own only, see ``_visible``)."""
    with ctx.store() as (store, config):
        rows = store.label_efforts()
        seconds, source = seconds_per_image(rows, config.seconds_per_image)
        return _visible({**effort_summary(rows), "seconds_per_image": seconds, "seconds_source": source, "labels": rows}, user)


def worker_status(ctx: Context, user: accounts.User, request: Request, body: bytes) -> dict:
    """The round worker's state and progress."""
    return ctx.worker.status()


def worker_start(ctx: Context, user: accounts.User, request: Request, body: bytes) -> dict:
    """Start the next round (or finish an interrupted one) in the background (admins)."""
    with ctx.store() as (store, config):
        waiting = len(store.queue())
        current = store.current_round()
    interrupted = current is not None and current["state"] != "done"
    if waiting and not config.simulation and not interrupted:
        raise HTTPError(409, f"{waiting} queued image{'s' if waiting > 1 else ''} still wait for labels; "
                             "the next round trains on them, so label them first")
    if ctx.worker.status()["running"]:
        raise HTTPError(409, "a round is already running in this project; wait for it to finish")
    try:
        return ctx.worker.start()
    except CrackalError as exc:
        raise HTTPError(409, str(exc)) from None


def review_list(ctx: Context, user: accounts.User, request: Request, body: bytes) -> dict:
    """Every pool and held-out image, for the review viewer."""
    from crackal.app.prelabels import latest_round

    with ctx.store() as (store, config):
        queued = _queued(store)
        images = [{"id": r.id, "name": r.name, "role": r.role, "labelled": r.labelled, "queued": r.id in queued,
                   "has_truth": r.truth_path is not None or r.label_path is not None} for r in store.images()]
        return {"images": images, "round": latest_round(store), "task": config.task}


def review_image(ctx: Context, user: accounts.User, request: Request, body: bytes) -> Response:
    """One layer of the review viewer as a PNG (404 where there is none)."""
    from crackal.app.review import LAYERS, review_layer

    layer = request.path_params["layer"]
    if layer not in LAYERS:
        raise HTTPError(404, f"no layer {layer[:40]!r}; layers: {', '.join(LAYERS)}")
    with ctx.store() as (store, config):
        record = _record(store, request)
        data = review_layer(store, config, record, layer)
    if data is None:
        raise HTTPError(404, f"no {layer} for {record.name}" + (" yet (no round has run)" if layer != "truth" else ""))
    return Response(data, media_type="image/png", headers={"cache-control": "private, max-age=60"})


# --- labelling assists: tracing and fill (crackal.app.assist) -------------------------------------------------

ASSIST_CACHE = 4  # images whose assist maps are kept in memory (a 4000x3000 photo: 24-60 MB)


def _assist(ctx: Context, user: accounts.User, request: Request, check: Callable[[int, int], None]):
    """The ``AssistSource`` of the image in the URL, which must be leased to ``user`` (409
    otherwise, as for a submit); ``check(width, height)`` sees the request's points first. The
    maps come from the latest round's probability layer (the review viewer's, cached per round)
    or, before the first round, from the image's ridge filter; the last ``ASSIST_CACHE`` images'
    are kept."""
    from crackal.app.assist import assist_source
    from crackal.app.prelabels import latest_round
    from crackal.app.review import review_layer
    from crackal.data.io import read_image

    with ctx.store() as (store, config):
        record = _record(store, request)
        if config.task != "segmentation":
            raise HTTPError(400, "tracing and fill are tools of the mask editor; this is a detection project")
        lease = leases.holder(store, record.id, ctx.settings.clock)
        if lease is None or lease.user != user.name:
            held = f"it is leased to {lease.user}" if lease else "your lease has expired or was released"
            raise HTTPError(409, f"{record.name} is not leased to you ({held}); open it again to take it")
        height, width = image_size(record.path)
        check(width, height)
        key = (record.id, latest_round(store))
        with ctx.guard:
            source = ctx.assist.get(key)
            if source is not None:
                ctx.assist.move_to_end(key)
        if source is not None:
            return source
        probability = None
        if key[1] is not None:
            data = review_layer(store, config, record, "probability")
            if data is not None:
                with Image.open(io.BytesIO(data)) as img:
                    probability = np.asarray(img.convert("L"))
    source = assist_source(read_image(record.path) if probability is None else np.zeros((0, 0), np.uint8), probability)
    with ctx.guard:
        ctx.assist[key] = source
        while len(ctx.assist) > ASSIST_CACHE:
            ctx.assist.popitem(last=False)
    return source


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
        raise HTTPError(400, f"{what} must be a number, got {str(value)[:40]!r}")
    return float(value)


def _inside(x: float, y: float, width: int, height: int, what: str) -> None:
    if not (0 <= x < width and 0 <= y < height):
        raise HTTPError(400, f"{what} ({x:g}, {y:g}) is outside the {width}x{height} image")


def trace_path(ctx: Context, user: accounts.User, request: Request, body: bytes) -> dict:
    """The crack path through the clicked points: ``{"points": [[x, y], ...]}`` (image
    coordinates, 1 to ``MAX_POINTS``) gives ``{"path": [[x, y], ...], "source"}``, the pixels
    (column, row; centre at x + 0.5, y + 0.5) of the cheapest path joining each point to the next
    (see ``crackal.app.assist.trace``). Stores nothing."""
    from crackal.app.assist import MAX_POINTS, trace

    items = _json(body).get("points")
    if not isinstance(items, list) or not items:
        raise HTTPError(400, 'send {"points": [[x, y], ...]}: at least one point, in image pixels')
    if len(items) > MAX_POINTS:
        raise HTTPError(400, f"{len(items)} points: at most {MAX_POINTS} in one trace; send the trace in parts")
    points = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, list) or len(item) != 2:
            raise HTTPError(400, f"point {number}: expected [x, y], got {str(item)[:40]!r}")
        points.append((_number(item[0], f"point {number}'s x"), _number(item[1], f"point {number}'s y")))

    def check(width: int, height: int) -> None:
        for number, (x, y) in enumerate(points, start=1):
            _inside(x, y, width, height, f"point {number}")

    source = _assist(ctx, user, request, check)
    return {"path": [[x, y] for x, y in trace(source, points)], "source": source.source}


def fill_region(ctx: Context, user: accounts.User, request: Request, body: bytes) -> dict:
    """The region at a click: ``{"x", "y", "tolerance"}`` (image coordinates; tolerance 0..1
    of the value range, default ``crackal.app.assist.DEFAULT_TOLERANCE``) gives ``{"x0", "y0",
    "x1", "y1", "pixels", "mask", "source"}``: its box (x1, y1 exclusive), its pixel count and
    ``mask``, the base64 of the zlib-compressed bytes (1 in the region, 0 outside) of the box,
    row-major. 422 when the region would cover more than ``MAX_FILL_FRACTION`` of the image.
    Stores nothing."""
    import base64

    from crackal.app.assist import DEFAULT_TOLERANCE, AssistError, bounding_box, fill

    data = _json(body)
    x, y = _number(data.get("x"), "x"), _number(data.get("y"), "y")
    tolerance = _number(data.get("tolerance", DEFAULT_TOLERANCE), "tolerance")
    if not 0 <= tolerance <= 1:
        raise HTTPError(400, f"tolerance must be between 0 and 1 (a fraction of the value range), got {tolerance:g}")
    source = _assist(ctx, user, request, lambda width, height: _inside(x, y, width, height, "the point"))
    try:
        region = fill(source.values, x, y, tolerance)
    except AssistError as exc:
        raise HTTPError(422, str(exc)) from None
    box = bounding_box(region)
    assert box is not None  # the clicked pixel is always in its region
    x0, y0, x1, y1 = box
    bits = np.ascontiguousarray(region[y0:y1, x0:x1], np.uint8).tobytes()
    return {"x0": x0, "y0": y0, "x1": x1, "y1": y1, "pixels": int(region.sum()),
            "mask": base64.b64encode(zlib.compress(bits, 6)).decode("ascii"), "source": source.source}


# --- pages ------------------------------------------------------------------------------------------------


def page(name: str) -> Handler:
    """A page that needs a session."""
    return lambda ctx, user, request, body: _static(PAGES[name])


def label_page(ctx: Context, user: accounts.User, request: Request, body: bytes) -> Response:
    """The mask editor, or the box editor in a detection project."""
    with ctx.store() as (store, config):
        _record(store, request)
    return _static("boxes.html" if config.task == "detection" else "editor.html")


def home(ctx: Context, user, request: Request, body: bytes) -> Response:
    """To the queue when signed in, else to the login."""
    found = ctx.session(request.cookies.get(COOKIE))
    return RedirectResponse("/queue" if found else "/login", status_code=303)


def static_file(ctx: Context, user, request: Request, body: bytes) -> Response:
    """A file of the app's own ``static/`` folder, by a name from a fixed list (no path is
    built from the request)."""
    name = request.path_params["name"]
    allowed = request.app.state.static_files
    if name not in allowed:
        raise HTTPError(404, "not found")
    return _static(allowed[name])


async def _unrouted(request: Request, exc: Exception) -> Response:
    """A path no route serves (404) or a method it does not take (405), answered in JSON like the API."""
    status = getattr(exc, "status_code", 404)
    message = (f"no page or API call at {request.url.path[:200]}; the API is listed in the labelling app's docs"
               if status == 404 else f"{request.method} is not allowed on {request.url.path[:200]}")
    return JSONResponse({"error": message}, status, headers=getattr(exc, "headers", None))


def _check_project(ctx: Context) -> None:
    """At start-up, in the background: remove what interrupted writes left (``.uploads/``,
    temporary label files), then read every current label file and report the damaged ones on
    standard error and in the dashboard's ``damaged_labels``; the server serves meanwhile."""
    from crackal.active.health import clean_leftovers, damaged_labels

    found = []
    try:
        removed = clean_leftovers(ctx.root)
        if removed:
            _say(f"removed {removed} leftover file{'s' if removed > 1 else ''} of interrupted writes")
        with ctx.store() as (store, config):
            found = damaged_labels(store, config.class_names)
    except Exception as exc:  # noqa: BLE001 - a check must not stop the server
        _say(f"the label files could not be checked ({type(exc).__name__}: {exc})")
    for item in found:
        _say(f"damaged label: {item.message()}")
    ctx.damaged = found


def create_app(project: str | Path, lease_minutes: float = 30.0, session_hours: float = 12.0,
               max_upload_bytes: int = MAX_UPLOAD, settings: AppSettings | None = None) -> Starlette:
    """The labelling web app of one project (see the module docstring); ``settings`` overrides
    the keyword arguments (tests set the clock and the worker's command there)."""
    root = Path(project)
    ProjectStore(root).close()  # a clear error for a folder without a project; migrates an older one
    settings = settings or AppSettings(lease_minutes=lease_minutes, session_hours=session_hours,
                                       max_upload_bytes=max_upload_bytes)
    ctx = Context(root, settings, RoundWorker(root, settings.worker_command))
    threading.Thread(target=_check_project, args=(ctx,), name="crackal-check", daemon=True).start()
    images = "/api/images/{image_id:int}"
    routes = [
        Route("/", endpoint(home, session=False)),
        Route("/login", endpoint(lambda *a: _static("login.html"), session=False)),
        Route("/queue", endpoint(page("queue"), page=True)),
        Route("/dashboard", endpoint(page("dashboard"), page=True)),
        Route("/review", endpoint(page("review"), page=True)),
        Route("/label/{image_id:int}", endpoint(label_page, page=True)),
        Route("/static/{name}", endpoint(static_file, session=False)),
        Route("/api/login", endpoint(login, session=False, write=True), methods=["POST"]),
        Route("/api/logout", endpoint(logout, write=True), methods=["POST"]),
        Route("/api/me", endpoint(me)),
        Route("/api/sessions", endpoint(sessions_list, admin=True)),
        Route("/api/sessions/{session_id}", endpoint(session_revoke, write=True, admin=True), methods=["DELETE"]),
        Route("/api/queue", endpoint(queue)),
        Route("/api/queue/next", endpoint(next_image, write=True), methods=["POST"]),
        Route(images, endpoint(image_info)),
        Route(images + "/image", endpoint(image_bytes)),
        Route(images + "/thumb", endpoint(thumbnail)),
        Route(images + "/prelabel", endpoint(prelabel_data)),
        Route(images + "/lease", endpoint(take_lease, write=True), methods=["POST"]),
        Route(images + "/lease", endpoint(release_lease, write=True), methods=["DELETE"]),
        Route(images + "/skip", endpoint(skip, write=True), methods=["POST"]),
        Route(images + "/mask", endpoint(submit_mask, write=True), methods=["POST"]),
        Route(images + "/boxes", endpoint(submit_boxes, write=True), methods=["POST"]),
        Route(images + "/trace", endpoint(trace_path, write=True), methods=["POST"]),
        Route(images + "/fill", endpoint(fill_region, write=True), methods=["POST"]),
        Route("/api/dashboard", endpoint(dashboard_data)),
        Route("/api/effort", endpoint(effort_data)),
        Route("/api/worker", endpoint(worker_status)),
        Route("/api/worker/start", endpoint(worker_start, write=True, admin=True), methods=["POST"]),
        Route("/api/review", endpoint(review_list)),
        Route("/api/review/{image_id:int}/{layer}", endpoint(review_image)),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(Guard, limit=settings.max_upload_bytes)],
                    exception_handlers={404: _unrouted, 405: _unrouted})
    app.state.ctx = ctx
    app.state.static_files = {p.name: p.name for p in STATIC.iterdir() if p.is_file() and not p.name.startswith(".")}
    return app


def serve(project: str | Path, host: str = "127.0.0.1", port: int = 8765, lease_minutes: float = 30.0,
          log_level: str = "info") -> None:
    """Serve a project's labelling app with uvicorn until interrupted."""
    import uvicorn

    app = create_app(project, lease_minutes=lease_minutes)
    # the label path imports torch (seconds): done now, in the background, not in the first submit
    threading.Thread(target=lambda: __import__("crackal.active.labels"), daemon=True).start()
    uvicorn.run(app, host=host, port=port, log_level=log_level)
