"""HTTP plumbing of crackal's two web services (the labelling app, ``crackal.app.server``, and
the Label Studio ML backend, ``crackal.app.ml_backend``): a request body size limit with the
answers' extra headers (``BodyLimit``), JSON bodies (``json_object``, ``read_json``), errors as JSON
(``{"error": message}``, ``HTTPError``, ``error``, ``ERROR_HANDLERS``) and HTTP basic auth."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
from collections.abc import Sequence

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crackal.errors import CrackalError

log = logging.getLogger("crackal.app")


class HTTPError(Exception):
    """An answer other than 200, with a message for the page."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error(status: int, message: str, request: Request | None = None) -> JSONResponse:
    """A JSON error response ``{"error": message}``, logged with the request."""
    where = f"{request.method} {request.url.path} -> " if request is not None else ""
    log.warning("%s%d: %s", where, status, message)
    return JSONResponse({"error": message}, status_code=status)


class BasicAuth:
    """ASGI middleware: every HTTP request needs ``Authorization: Basic`` with these credentials
    (compared in constant time), else 401 with a ``WWW-Authenticate`` challenge."""

    def __init__(self, app: ASGIApp, credentials: tuple[str, str]) -> None:
        self.app = app
        self.user, self.password = (part.encode() for part in credentials)

    def _allowed(self, header: bytes) -> bool:
        scheme, _, encoded = header.partition(b" ")
        try:
            user, colon, password = base64.b64decode(encoded.strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return False
        same_user = hmac.compare_digest(user, self.user)
        same_password = hmac.compare_digest(password, self.password)  # both compared, whatever the first gave
        return scheme.lower() == b"basic" and bool(colon) and same_user and same_password

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass an authorised request (and anything not HTTP) on; answer 401 otherwise."""
        if scope["type"] != "http" or self._allowed(dict(scope["headers"]).get(b"authorization", b"")):
            await self.app(scope, receive, send)
            return
        response = error(401, "authentication required: give the user and password the backend was started with "
                              "(in Label Studio, the model's Basic Authentication settings)", Request(scope))
        response.headers["WWW-Authenticate"] = 'Basic realm="crackal", charset="UTF-8"'
        await response(scope, receive, send)


def json_object(body: bytes) -> dict:
    """A request body as a JSON object (an empty body is ``{}``); ``HTTPError`` 400 otherwise."""
    try:
        value = json.loads(body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPError(400, f"the request body is not JSON ({exc}); send a JSON object") from None
    if not isinstance(value, dict):
        raise HTTPError(400, f"the request body is JSON but not an object (got {type(value).__name__}); send a JSON object")
    return value


async def read_json(request: Request) -> dict:
    """The request body as a JSON object (``json_object``; ``BodyLimit`` bounds its size)."""
    return json_object(await request.body())


class _TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: a body larger than ``limit`` gets 413 with ``message`` (by its
    Content-Length before it is read, or as soon as the bytes received pass the limit); every
    answer gets ``headers`` (e.g. the labelling app's security headers)."""

    def __init__(self, app: ASGIApp, limit: int, message: str | None = None, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        self.app, self.limit, self.headers = app, limit, list(headers)
        self.message = message or f"the request is larger than the server's limit of {limit:,} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request (ASGI)."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        length = dict(scope.get("headers") or []).get(b"content-length")
        try:
            if length is not None and int(length) > self.limit:
                raise _TooLarge
        except ValueError:
            await error(400, "bad Content-Length", Request(scope))(scope, receive, send_with_headers)
            return
        except _TooLarge:
            await error(413, self.message, Request(scope))(scope, receive, send_with_headers)
            return
        received = 0

        async def limited() -> Message:
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
                await error(413, self.message, Request(scope))(scope, receive, send_with_headers)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """An ``HTTPException`` (a path no route serves: 404, a method it does not take: 405 ...) or
    an ``HTTPError`` as a JSON error."""
    if isinstance(exc, HTTPError):
        return error(exc.status, exc.message, request)
    assert isinstance(exc, HTTPException)
    path = request.url.path[:200]
    message = {404: f"no page or API call at {path}", 405: f"{request.method} is not allowed on {path}"}.get(
        exc.status_code, str(exc.detail))
    response = error(exc.status_code, message, request)
    response.headers.update(exc.headers or {})
    return response


async def user_error(request: Request, exc: Exception) -> JSONResponse:
    """A ``CrackalError`` (a request this project cannot serve) as 422, with its message."""
    return error(422, str(exc), request)


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """Anything else as 500, with the traceback in the log."""
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error(500, f"internal error ({type(exc).__name__}: {exc}); the backend's log has the traceback", request)


ERROR_HANDLERS = {HTTPException: http_error, HTTPError: http_error, CrackalError: user_error, Exception: internal_error}
