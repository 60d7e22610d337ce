"""The labelling web app: ``create_app(project)`` is a Starlette application, served by
``crackal serve`` under uvicorn (``serve``). Its routes live in ``crackal.app.routes``, one module
per area (``auth``, ``queue``, ``images``, ``labels``, ``review``, ``assist``; ``common`` holds the
settings, the served project's state and the endpoint wrapper); the HTTP plumbing (body limit,
JSON bodies and errors) is ``crackal.app.http``, shared with the Label Studio ML backend.

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

import threading
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from crackal.active.store import ProjectStore
from crackal.app import accounts
from crackal.app.http import BodyLimit, HTTPError, http_error
from crackal.app.routes import assist, auth, images, labels, queue, review
from crackal.app.routes.common import (
    COOKIE,
    MAX_UPLOAD,
    PAGES,
    STATIC,
    AppSettings,
    Context,
    Handler,
    endpoint,
    image_of,
    say,
    static_page,
)
from crackal.app.worker import RoundWorker

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"),
]


def page(name: str) -> Handler:
    """A page that needs a session."""
    return lambda ctx, user, request, body: static_page(PAGES[name])


def label_page(ctx: Context, user: accounts.User, request: Request, body: bytes) -> Response:
    """The mask editor, or the box editor in a detection project."""
    with ctx.store() as (store, config):
        image_of(store, request)
    return static_page("boxes.html" if config.task == "detection" else "editor.html")


def home(ctx: Context, user: accounts.User | None, request: Request, body: bytes) -> Response:
    """To the queue when signed in, else to the login."""
    found = ctx.session(request.cookies.get(COOKIE))
    return RedirectResponse("/queue" if found else "/login", status_code=303)


def static_file(ctx: Context, user: accounts.User | None, request: Request, body: bytes) -> Response:
    """A file of the app's own ``static/`` folder, by a name from a fixed list (no path is
    built from the request)."""
    name = request.path_params["name"]
    allowed = request.app.state.static_files
    if name not in allowed:
        raise HTTPError(404, "not found")
    return static_page(allowed[name])


def _check_project(ctx: Context) -> None:
    """At start-up, in the background: remove what interrupted writes left (``.uploads/``,
    temporary label files), then read every current label file and report the damaged ones on
    standard error and in the dashboard's ``damaged_labels``; the server serves meanwhile."""
    from crackal.active.health import clean_leftovers, damaged_labels

    found = []
    try:
        removed = clean_leftovers(ctx.root)
        if removed:
            say(f"removed {removed} leftover file{'s' if removed > 1 else ''} of interrupted writes")
        with ctx.store() as (store, config):
            found = damaged_labels(store, config.class_names)
    except Exception as exc:  # noqa: BLE001 - a check must not stop the server
        say(f"the label files could not be checked ({type(exc).__name__}: {exc})")
    for item in found:
        say(f"damaged label: {item.message()}")
    ctx.damaged = found


def create_app(project: str | Path, lease_minutes: float = 30.0, session_hours: float = 12.0,
               max_upload_bytes: int = MAX_UPLOAD, secure_cookies: bool = False,
               settings: AppSettings | None = None) -> Starlette:
    """The labelling web app of one project (see the module docstring); ``settings`` overrides
    the keyword arguments (tests set the clock and the worker's command there)."""
    root = Path(project)
    ProjectStore(root).close()  # a clear error for a folder without a project; migrates an older one
    settings = settings or AppSettings(lease_minutes=lease_minutes, session_hours=session_hours,
                                       max_upload_bytes=max_upload_bytes, secure_cookies=secure_cookies)
    ctx = Context(root, settings, RoundWorker(root, settings.worker_command))
    threading.Thread(target=_check_project, args=(ctx,), name="crackal-check", daemon=True).start()
    one_image = "/api/images/{image_id:int}"
    routes = [
        Route("/", endpoint(home, session=False)),
        Route("/login", endpoint(lambda *a: static_page("login.html"), session=False)),
        Route("/queue", endpoint(page("queue"), page=True)),
        Route("/dashboard", endpoint(page("dashboard"), page=True)),
        Route("/review", endpoint(page("review"), page=True)),
        Route("/label/{image_id:int}", endpoint(label_page, page=True)),
        Route("/static/{name}", endpoint(static_file, session=False)),
        Route("/api/login", endpoint(auth.login, session=False, write=True), methods=["POST"]),
        Route("/api/logout", endpoint(auth.logout, write=True), methods=["POST"]),
        Route("/api/me", endpoint(auth.me)),
        Route("/api/sessions", endpoint(auth.sessions_list, admin=True)),
        Route("/api/sessions/{session_id}", endpoint(auth.session_revoke, write=True, admin=True), methods=["DELETE"]),
        Route("/api/queue", endpoint(queue.list_queue)),
        Route("/api/queue/next", endpoint(queue.next_image, write=True), methods=["POST"]),
        Route(one_image, endpoint(images.image_info)),
        Route(one_image + "/image", endpoint(images.image_bytes)),
        Route(one_image + "/thumb", endpoint(images.thumbnail)),
        Route(one_image + "/prelabel", endpoint(images.prelabel_data)),
        Route(one_image + "/lease", endpoint(queue.take_lease, write=True), methods=["POST"]),
        Route(one_image + "/lease", endpoint(queue.release_lease, write=True), methods=["DELETE"]),
        Route(one_image + "/skip", endpoint(queue.skip, write=True), methods=["POST"]),
        Route(one_image + "/mask", endpoint(labels.submit_mask, write=True), methods=["POST"]),
        Route(one_image + "/boxes", endpoint(labels.submit_boxes, write=True), methods=["POST"]),
        Route(one_image + "/trace", endpoint(assist.trace_path, write=True), methods=["POST"]),
        Route(one_image + "/fill", endpoint(assist.fill_region, write=True), methods=["POST"]),
        Route("/api/dashboard", endpoint(review.dashboard_data)),
        Route("/api/effort", endpoint(review.effort_data)),
        Route("/api/worker", endpoint(review.worker_status)),
        Route("/api/worker/start", endpoint(review.worker_start, write=True, admin=True), methods=["POST"]),
        Route("/api/review", endpoint(review.review_list)),
        Route("/api/review/{image_id:int}/{layer}", endpoint(review.review_image)),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(BodyLimit, limit=settings.max_upload_bytes, headers=SECURITY_HEADERS)],
                    exception_handlers={HTTPException: http_error})
    app.state.ctx = ctx
    app.state.static_files = {p.name: p.name for p in STATIC.iterdir() if p.is_file() and not p.name.startswith(".")}
    return app


def serve(project: str | Path, host: str = "127.0.0.1", port: int = 8765, lease_minutes: float = 30.0,
          log_level: str = "info", secure_cookies: bool = False) -> None:
    """Serve a project's labelling app with uvicorn until interrupted (``secure_cookies``: the
    session cookie only over HTTPS, behind a proxy that terminates it)."""
    import uvicorn

    app = create_app(project, lease_minutes=lease_minutes, secure_cookies=secure_cookies)
    # the label path imports torch (seconds): done now, in the background, not in the first submit
    threading.Thread(target=lambda: __import__("crackal.active.labels"), daemon=True).start()
    # keep idle connections 75 s (uvicorn's default is 5 s): an editor page idles between requests while its
    # labeller paints, and a request sent on a connection the server has just closed is reset
    uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_keep_alive=75)
