"""An image's facts, bytes, thumbnail and pre-annotation."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from crackal.app import accounts, leases
from crackal.app.http import HTTPError
from crackal.app.routes.common import (
    Context,
    image_of,
)
from crackal.data.boxes import ImageBoxes
from crackal.data.io import image_size

THUMB = 160


def image_info(ctx: Context, user: accounts.User, request: Request, body: bytes) -> dict:
    """An image's name, size, place in the queue, lease and current label."""
    with ctx.store() as (store, _):
        record = image_of(store, request)
        height, width = image_size(record.path)
        queued = store.queue_place(record.id)
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
        record = image_of(store, request)
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
        record = image_of(store, request)
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
        record = image_of(store, request)
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
