"""The mask editor's assists over HTTP: crack tracing and click-to-fill (computed by
``crackal.app.assist``)."""

from __future__ import annotations

import base64
import io
import zlib
from collections.abc import Callable

import numpy as np
from PIL import Image
from starlette.requests import Request

from crackal.app import accounts, leases
from crackal.app.http import HTTPError, json_object
from crackal.app.routes.common import (
    Context,
    image_of,
)
from crackal.data.io import image_size

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
        record = image_of(store, request)
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

    items = json_object(body).get("points")
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

    from crackal.app.assist import DEFAULT_TOLERANCE, AssistError, bounding_box, fill

    data = json_object(body)
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
