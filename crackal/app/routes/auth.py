"""Sign-in, sign-out, the signed-in user, and the admins' list of sessions."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crackal.active.config import ALConfig
from crackal.active.effort import IDLE_SECONDS
from crackal.app import accounts, throttle
from crackal.app.http import HTTPError, json_object
from crackal.app.routes.common import (
    COOKIE,
    Context,
)
from crackal.inference.render import class_color


def login(ctx: Context, _user: accounts.User | None, request: Request, body: bytes) -> Response:
    """Check a name and password; set the session cookie."""
    data = json_object(body)
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


def logout(ctx: Context, _user: accounts.User, request: Request, body: bytes) -> Response:
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


def _colours(config: ALConfig) -> list[str]:
    return ["#000000"] + ["#" + "".join(f"{int(v):02x}" for v in class_color(i)) for i in range(1, len(config.class_names))]
