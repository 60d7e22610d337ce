"""The learning-curve forecast of a project or a strategy: an inverse power law fitted to its
held-out score against labels (``crackal.metrics.curves.forecast_curve``) says what labelling
the whole pool would give, how many labels come within ``tolerance`` of that, and what they cost."""

from __future__ import annotations

from crackal.metrics.curves import forecast_curve

TOLERANCE = 0.01
INTERVAL = "95 % interval from 300 refits to bootstrapped residuals"


def forecast_labels(labelled: list[int], scores: list[float], pool: int, cost_per_image: float,
                    seconds_per_image: float, tolerance: float = TOLERANCE) -> dict:
    """The forecast as JSON values; ``status`` is ``ok``, ``not enough rounds`` (fewer than 3)
    or ``the fit failed``."""
    if len(labelled) < 3:
        return {"status": "not enough rounds", "rounds": len(labelled)}
    found = forecast_curve(labelled, scores, pool, tolerance)
    if found is None:
        return {"status": "the fit failed", "rounds": len(labelled)}
    return {"status": "ok", "rounds": len(labelled), "pool": pool, "tolerance": tolerance,
            "params": [round(p, 4) for p in found.params], "score_at_pool": round(found.score_at_pool, 4),
            "score_interval": [round(v, 4) for v in found.score_interval] if found.score_interval else None,
            "labels_needed": found.labels_needed, "labels_interval": list(found.labels_interval) if found.labels_interval else None,
            "cost": round(found.labels_needed * cost_per_image, 2),
            "hours": round(found.labels_needed * seconds_per_image / 3600, 2), "interval": INTERVAL}


def forecast_text(forecast: dict, score: str = "F1") -> str:
    """One sentence about a forecast (see ``forecast_labels``).

    >>> forecast_text({"status": "not enough rounds", "rounds": 2})
    'forecast: not enough rounds (2 rounds; the power-law fit needs 3)'
    """
    if forecast["status"] == "not enough rounds":
        return f"forecast: not enough rounds ({forecast['rounds']} rounds; the power-law fit needs 3)"
    if forecast["status"] != "ok":
        return f"forecast: {forecast['status']} ({forecast['rounds']} rounds)"
    interval = forecast["score_interval"]
    labels = forecast["labels_interval"]
    return (f"forecast: {score} {forecast['score_at_pool']:.3f}"
            + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else " (no interval from 3 points)")
            + f" with all {forecast['pool']} pool images labelled; {forecast['labels_needed']} labels"
            + (f" [{labels[0]}, {labels[1]}]" if labels else "")
            + f" come within {forecast['tolerance']} of it (${forecast['cost']:.2f}, {forecast['hours']:.1f} h of labelling)")
