"""What the dashboard shows: every round (held-out scores, pool uncertainty), the class
balance of each labelled batch, labels per labeller, the measured labelling time, the labelling
cost and time spent and saved (reached or projected), and the stopping state in words."""

from __future__ import annotations

from collections import Counter

from crackal.active.config import ALConfig
from crackal.active.effort import effort_summary, seconds_per_image
from crackal.active.forecast import forecast_labels, forecast_text
from crackal.active.report import project_history
from crackal.active.scores import LABELS, round_scores
from crackal.active.stopping import stop_reason
from crackal.active.store import ProjectStore


def headline_score(metrics: dict) -> float:
    """A scored round's held-out headline score (F1; mAP@0.5 for detection), which, unlike the
    other scores of ``round_scores``, every round's metrics hold."""
    score = round_scores(metrics)["score"]
    assert score is not None, "a round's metrics hold its headline score"
    return score


def flat_rounds(scores: list[float], min_delta: float) -> int:
    """How many of the last rounds gained less than ``min_delta`` over the best score before them.

    >>> flat_rounds([0.30, 0.40, 0.402, 0.401], 0.005)
    2
    """
    best, flat = scores[0], 0
    for score in scores[1:]:
        flat = 0 if score >= best + min_delta else flat + 1
        best = max(best, score)
    return flat


def stopping_advice(store: ProjectStore, config: ALConfig) -> dict:
    """``{"stop": bool, "text": ...}``: a stopping criterion that is met, or how the held-out
    score moves ("held-out F1 flat for 2 rounds: consider stopping")."""
    rounds = store.rounds()
    reason = stop_reason(rounds, config, len(store.labelled()) + store.queue_count(), len(store.unlabelled()))
    if reason:
        return {"stop": True, "text": f"stop: {reason}"}
    name = LABELS[config.task]["score"]
    scores = [headline_score(r["metrics"]) for r in rounds if r["state"] == "done" and r["metrics"]]
    if len(scores) < 2:
        return {"stop": False, "text": f"too early to tell: the held-out {name} trend shows after two finished rounds"}
    flat = flat_rounds(scores, config.min_delta)
    if flat:
        patience = f" (the project's patience is {config.patience})" if config.patience else ""
        return {"stop": False, "text": f"held-out {name} flat for {flat} round{'s' if flat > 1 else ''}{patience}: consider stopping"}
    return {"stop": False, "text": f"held-out {name} still rising ({scores[-2]:.3f} -> {scores[-1]:.3f}): keep labelling"}


def dashboard(store: ProjectStore, config: ALConfig) -> dict:
    """Everything the dashboard page draws, as plain JSON values."""
    history = project_history(store.root)
    labels = LABELS[config.task]
    rounds = []
    for r in store.rounds():
        scores = round_scores(r["metrics"]) if r["metrics"] else {}
        rounds.append({"round": r["round"], "state": r["state"], "labelled": r["labelled"], **scores,
                       "pool_uncertainty": r["pool_uncertainty"], "started_at": r["started_at"], "finished_at": r["finished_at"]})
    labelled = store.labelled()
    pool = len(store.images("role = 'pool'"))
    by_labeller = Counter(record.labelled_by for record in labelled)
    rows = store.conn.execute("SELECT labelled_by, COUNT(*) AS n FROM labels JOIN images ON images.id = labels.image_id "
                              "WHERE images.role = 'pool' GROUP BY labelled_by").fetchall()
    all_labels = {row["labelled_by"]: row["n"] for row in rows}
    count = len(labelled)
    timed = store.label_efforts()
    seconds, seconds_source = seconds_per_image(timed, config.seconds_per_image)
    return {
        "task": config.task,
        "score_names": labels,
        "class_names": config.class_names,
        "rounds": rounds,
        "history": history,
        "labellers": [{"name": name, "current": by_labeller.get(name, 0), "all": all_labels[name]} for name in sorted(all_labels)],
        "counts": {"pool": pool, "labelled": count, "queued": store.queue_count(), "unlabelled": len(store.unlabelled()),
                   "heldout": len(store.heldout()), "budget": config.budget},
        "cost": {
            "per_image": config.cost_per_image, "seconds_per_image": seconds, "seconds_source": seconds_source,
            "spent": round(count * config.cost_per_image, 2), "hours_spent": round(count * seconds / 3600, 2),
            **savings(store, config, pool, count, seconds),
        },
        "effort": effort_summary(timed),
        "stopping": stopping_advice(store, config),
    }


def savings(store: ProjectStore, config: ALConfig, pool: int, labelled: int, seconds: float) -> dict:
    """What labelling less than the whole pool saves, only once there is a basis for it:
    ``reached`` when a stopping criterion is met (saved = the images left unlabelled), else
    ``projected`` from the learning-curve forecast (the labels that come within its tolerance
    of the whole-pool score), else ``none`` with the reason."""
    if stopping_advice(store, config)["stop"]:
        left = pool - labelled
        return {"saving": "reached", "saved": round(left * config.cost_per_image, 2), "hours_saved": round(left * seconds / 3600, 2),
                "saving_text": f"a stopping criterion is met at {labelled} labels: the {left} unlabelled pool images need no labels"}
    scored = [r for r in store.rounds() if r["metrics"]]
    forecast = forecast_labels([r["labelled"] for r in scored], [headline_score(r["metrics"]) for r in scored],
                               pool, config.cost_per_image, seconds)
    if forecast["status"] == "ok":
        left = max(pool - forecast["labels_needed"], 0)
        return {"saving": "projected", "saved": round(left * config.cost_per_image, 2), "hours_saved": round(left * seconds / 3600, 2),
                "saving_text": f"projection: the forecast needs about {forecast['labels_needed']} of {pool} pool images "
                               "labelled to come within its tolerance of the whole-pool score"}
    return {"saving": "none", "saved": None, "hours_saved": None,
            "saving_text": f"no saving to show yet: {forecast_text(forecast)}"}
