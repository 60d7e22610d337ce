"""The labelling queue and its leases: who is on which image, the next image, skipping."""

from __future__ import annotations

from starlette.requests import Request

from crackal.app import accounts, leases
from crackal.app.http import HTTPError
from crackal.app.routes.common import (
    Context,
    image_of,
)


def list_queue(ctx: Context, user: accounts.User, request: Request, body: bytes) -> dict:
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
        queued = store.queue_names()
        mine = [(i, name) for i, name in queued if i in live and live[i].user == user.name and i not in skipped]
        free = [(i, name) for i, name in queued if i not in live and i not in skipped]
        later = sorted(((i, name) for i, name in queued if i in skipped and (i not in live or live[i].user == user.name)),
                       key=lambda item: skipped[item[0]])
        for image_id, name in mine + free + later:
            try:
                lease = leases.take(store, image_id, name, user, ctx.settings.lease_minutes, ctx.settings.clock)
            except leases.LeaseConflict:
                continue  # taken a moment ago by someone else
            if store.queue_place(image_id) is None:  # labelled a moment ago (its lease is dropped just after)
                leases.release(store, image_id, name, user, ctx.settings.clock)
                continue
            with ctx.guard:
                ctx.skipped.get(user.id, {}).pop(image_id, None)
            return {"id": image_id, "name": name, "lease_expires": lease.expires_at}
        message = "the queue is empty: every selected image is labelled" if not queued else \
            "every queued image is being labelled by someone else"
        return {"id": None, "message": message}


def take_lease(ctx: Context, user: accounts.User, request: Request, body: bytes) -> dict:
    """Lease (or renew the lease of) a queued image; 409 when someone else holds it."""
    with ctx.store() as (store, _):
        record = image_of(store, request)
        if store.queue_place(record.id) is None:
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
        record = image_of(store, request)
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
        record = image_of(store, request)
        leases.release(store, record.id, record.name, user, ctx.settings.clock)
    with ctx.guard:
        ctx.skipped.setdefault(user.id, {})[record.id] = ctx.settings.clock()
    return {"ok": True}
