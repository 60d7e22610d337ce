"""The dashboard, the measured labelling time, the round worker and the review viewer."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from crackal.active.effort import effort_summary, seconds_per_image
from crackal.app import accounts
from crackal.app.http import HTTPError
from crackal.app.routes.common import (
    Context,
    image_of,
    queue_positions,
)
from crackal.errors import CrackalError


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
        waiting = store.queue_count()
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
        queued = queue_positions(store)
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
        record = image_of(store, request)
        data = review_layer(store, config, record, layer)
    if data is None:
        raise HTTPError(404, f"no {layer} for {record.name}" + (" yet (no round has run)" if layer != "truth" else ""))
    return Response(data, media_type="image/png", headers={"cache-control": "private, max-age=60"})
