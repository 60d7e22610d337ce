"""Submitted labels (masks and boxes, with the effort the page measured) into the project,
through ``crackal.active.labels.store_labels`` under the project's write lock."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import numpy as np
from starlette.requests import Request

from crackal.active.config import ALConfig
from crackal.active.effort import Effort, parse_effort
from crackal.active.lock import project_lock
from crackal.active.store import ImageRecord, ProjectStore
from crackal.app import accounts, leases
from crackal.app.http import HTTPError, json_object
from crackal.app.routes.common import (
    Context,
    image_of,
)
from crackal.data.boxes import ImageBoxes, fit_to_image
from crackal.data.io import image_size
from crackal.errors import CrackalError

EFFORT_HEADER = "x-label-effort"
MAX_BOXES = 10_000


@contextmanager
def _label_write(ctx: Context, user: accounts.User, request: Request) -> Iterator[tuple[ProjectStore, ALConfig, ImageRecord]]:
    """Under the project's write lock: the image, checked to be queued and leased to ``user``."""
    with ctx.write_lock, ctx.store() as (store, config), ExitStack() as stack:
        record = image_of(store, request)
        try:
            stack.enter_context(project_lock(ctx.root, f"crackal serve ({user.name} labels {record.name})",
                                             wait=ctx.settings.lock_wait))
        except CrackalError as exc:  # a round or an import is writing the project
            raise HTTPError(409, f"{exc} (nothing stored)") from None
        record = image_of(store, request)  # as it is now, under the lock
        if store.queue_place(record.id) is None:
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

    data = json_object(body)
    effort = _effort(request)
    with _label_write(ctx, user, request) as (store, config, record):
        if config.task != "detection":
            raise HTTPError(400, "this is a segmentation project: submit a mask")
        boxes = _boxes(data, config, image_size(record.path), record.name)
        store_labels(store, [NewLabel(record, f"the boxes submitted for {record.name}", boxes, user.name, effort)],
                     config.class_names)
        leases.drop(store, [record.id])
        return {"ok": True, "id": record.id, "name": record.name, "labelled_by": user.name, "boxes": len(boxes)}
