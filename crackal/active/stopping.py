"""When to stop the loop: label budget, exhausted pool, held-out plateau, low pool uncertainty."""

from __future__ import annotations

from crackal.active.config import ALConfig


def plateaued(rounds: list[dict], patience: int, min_delta: float) -> bool:
    """No held-out F1 (strict) gain of ``min_delta`` and no lower held-out loss in the last
    ``patience`` rounds, compared with the best before them."""
    scored = [r["metrics"] for r in rounds if r.get("metrics")]
    if len(scored) <= patience:
        return False
    before, recent = scored[:-patience], scored[-patience:]
    best_f1 = max(m["strict"]["f1"] for m in before)
    best_loss = min(m["loss"] for m in before)
    no_f1_gain = max(m["strict"]["f1"] for m in recent) < best_f1 + min_delta
    no_loss_gain = min(m["loss"] for m in recent) > best_loss - min_delta
    return no_f1_gain and no_loss_gain


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
        return f"held-out F1 and loss have not improved by {config.min_delta} for {config.patience} rounds"
    if config.min_uncertainty is not None and last["pool_uncertainty"] is not None and last["pool_uncertainty"] < config.min_uncertainty:
        return f"mean pool uncertainty {last['pool_uncertainty']:.4g} is below {config.min_uncertainty}"
    return None
