"""When to stop the loop: label budget, exhausted pool, held-out plateau, low pool uncertainty."""

from __future__ import annotations

from crackal.active.config import ALConfig
from crackal.active.scores import round_scores


def plateaued(rounds: list[dict], patience: int, min_delta: float) -> bool:
    """No held-out score gain (strict F1, or mAP@0.5 for detection) of ``min_delta`` and no
    lower held-out loss (where there is one) in the last ``patience`` rounds, compared with
    the best before them."""
    scored = [round_scores(r["metrics"]) for r in rounds if r.get("metrics")]
    if len(scored) <= patience:
        return False
    score = [present(m["score"]) for m in scored]
    no_score_gain = max(score[-patience:]) < max(score[:-patience]) + min_delta
    losses = [m["loss"] for m in scored]
    loss = [x for x in losses if x is not None]
    if len(loss) < len(losses):
        return no_score_gain
    no_loss_gain = min(loss[-patience:]) > min(loss[:-patience]) - min_delta
    return no_score_gain and no_loss_gain


def present(value: float | None) -> float:
    """A score that every round has (the headline score), checked present."""
    assert value is not None, "a round's held-out metrics always carry its headline score"
    return value


def stop_reason(rounds: list[dict], config: ALConfig, labelled_or_queued: int, pool_left: int) -> str | None:
    """Why the loop should stop now, or None. ``labelled_or_queued`` counts the queue too."""
    finished = [r for r in rounds if r["state"] == "done"]
    last = finished[-1] if finished else None
    trained_on_all = last is not None and last["labelled"] >= labelled_or_queued
    if config.budget and labelled_or_queued >= config.budget and trained_on_all:
        return f"label budget of {config.budget} images reached"
    if pool_left == 0 and trained_on_all:
        return "the pool is exhausted: every image is labelled"
    if last is None:
        return None
    if config.patience and plateaued(finished, config.patience, config.min_delta):
        return f"held-out score and loss have not improved by {config.min_delta} for {config.patience} rounds"
    if config.min_uncertainty is not None and last["pool_uncertainty"] is not None and last["pool_uncertainty"] < config.min_uncertainty:
        return f"mean pool uncertainty {last['pool_uncertainty']:.4g} is below {config.min_uncertainty}"
    return None
