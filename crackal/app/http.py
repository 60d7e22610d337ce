"""HTTP plumbing of crackal's web services: HTTP basic auth, a request body size limit and
errors as JSON (``{"error": message}``), each logged."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from crackal.errors import CrackalError

log = logging.getLogger("crackal.app")


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


async def read_json(request: Request, limit: int) -> dict:
    """The request body as a JSON object; 413 past ``limit`` bytes (reading stops there), 400 if it is not JSON."""
    too_big = (f"the request body is larger than the backend's limit of {limit / 2 ** 20:g} MB; start it with a larger "
               "--max-body-mb (or send fewer tasks at once)")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise HTTPException(413, too_big)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, too_big)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPException(400, f"the request body is not JSON ({exc}); send a JSON object") from None
    if not isinstance(data, dict):
        raise HTTPException(400, f"the request body is JSON but not an object (got {type(data).__name__}); send a JSON object")
    return data


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """An ``HTTPException`` (404, 405, 413 ...) as a JSON error."""
    assert isinstance(exc, HTTPException)
    response = error(exc.status_code, str(exc.detail), request)
    response.headers.update(exc.headers or {})
    return response


async def user_error(request: Request, exc: Exception) -> JSONResponse:
    """A ``CrackalError`` (a request this project cannot serve) as 422, with its message."""
    return error(422, str(exc), request)


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """Anything else as 500, with the traceback in the log."""
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error(500, f"internal error ({type(exc).__name__}: {exc}); the backend's log has the traceback", request)


ERROR_HANDLERS = {HTTPException: http_error, CrackalError: user_error, Exception: internal_error}
