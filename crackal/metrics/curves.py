"""Learning curves: a score against the number of labelled images, and their forecast by an
inverse power law."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np


def labels_to_reach(x: np.ndarray, f1: np.ndarray, target: float) -> int | None:
    """The first labelled count whose score reaches ``target`` (None if none does).

    >>> labels_to_reach(np.array([10, 20, 30]), np.array([0.5, 0.7, 0.8]), 0.7)
    20
    """
    hits = np.nonzero(f1 >= target)[0]
    return int(x[hits[0]]) if len(hits) else None


def curve_area(x: np.ndarray, f1: np.ndarray) -> float:
    """Mean F1 over the labelled range (area under the learning curve / its width)."""
    if len(x) < 2:
        return float(f1[0]) if len(f1) else float("nan")
    return float(np.trapezoid(f1, x) / (x[-1] - x[0]))


def power_law(n: np.ndarray | float, a: float, b: float, c: float) -> np.ndarray:
    """The inverse power law of learning curves: score ``a - b * n ** -c`` at ``n`` labels."""
    return a - b * np.asarray(n, dtype=np.float64) ** -c


POWER_LAW_BOUNDS = ([0.0, 0.0, 0.05], [1.0, np.inf, 3.0])  # a (the plateau) is a score; c > 0 keeps it rising


@dataclass
class Forecast:
    """Where a learning curve is heading, from ``power_law`` fitted to its points.

    ``score_at_pool``: the score expected with the whole pool labelled; ``labels_needed``: the
    labels that bring the curve within ``tolerance`` of it. The intervals (95 %) come from
    residual-bootstrap refits; None from as many points as parameters (an exact fit).
    """

    params: tuple[float, float, float]
    pool: int
    tolerance: float
    score_at_pool: float
    labels_needed: int
    score_interval: tuple[float, float] | None
    labels_interval: tuple[int, int] | None


def fit_power_law(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Least-squares ``(a, b, c)`` of ``power_law`` (bounded, see ``POWER_LAW_BOUNDS``)."""
    from scipy.optimize import curve_fit

    x, y = np.asarray(labels, np.float64), np.asarray(scores, np.float64)
    start = (min(1.0, float(y.max()) + 0.05), max(1e-3, float(y.max() - y.min())) * float(x.min()) ** 0.5, 0.5)
    with warnings.catch_warnings():  # three points: curve_fit warns that it has no covariance, which is not used
        warnings.simplefilter("ignore")
        return curve_fit(power_law, x, y, p0=start, bounds=POWER_LAW_BOUNDS, maxfev=20_000)[0]


def labels_within(params, pool: int, tolerance: float) -> np.ndarray:
    """Labels at which ``power_law(params)`` comes within ``tolerance`` of its value at ``pool``
    (between 1 and ``pool``); ``params`` may be rows of draws."""
    a, b, c = np.asarray(params, np.float64).T
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        needed = ((b * pool ** -c + tolerance) / b) ** (-1 / c)
    return np.clip(np.nan_to_num(needed, nan=1.0, posinf=pool), 1, pool)


def _refits(x: np.ndarray, y: np.ndarray, params: np.ndarray, draws: int, seed: int) -> np.ndarray:
    """``(a, b, c)`` refitted to the fitted curve plus residuals drawn with replacement (scaled
    for the three fitted parameters): a residual bootstrap, which keeps every draw a bounded
    fit where draws from the fit's covariance (a linearisation) spread far outside [0, 1]."""
    fitted = power_law(x, *params)
    residuals = (y - fitted) * np.sqrt(len(x) / (len(x) - 3))
    rng = np.random.default_rng(seed)
    sample = []
    for _ in range(draws):
        try:
            sample.append(fit_power_law(x, fitted + rng.choice(residuals, len(x))))
        except (RuntimeError, ValueError):
            continue
    return np.array(sample).reshape(-1, 3)


def forecast_curve(labels, scores, pool: int, tolerance: float = 0.01, draws: int = 300, seed: int = 0) -> Forecast | None:
    """Fit ``power_law`` to a learning curve (at least 3 points; None with fewer or when the fit
    fails) and forecast the score at ``pool`` labels and the labels within ``tolerance`` of it;
    the 95 % intervals come from ``draws`` residual-bootstrap refits (none from 3 points, which
    fit exactly).

    >>> n = np.array([10, 20, 40, 80])
    >>> f = forecast_curve(n, power_law(n, 0.8, 1.0, 0.5), pool=1000)
    >>> round(f.score_at_pool, 3), f.labels_needed
    (0.768, 578)
    """
    if len(labels) < 3:
        return None
    try:
        params = fit_power_law(labels, scores)
    except (RuntimeError, ValueError):
        return None
    score, needed = float(power_law(pool, *params)), int(np.ceil(labels_within(params, pool, tolerance)))
    score_interval = labels_interval = None
    if len(labels) > 3:  # three points fit exactly: no residuals to draw from
        sample = _refits(np.asarray(labels, np.float64), np.asarray(scores, np.float64), params, draws, seed)
        if len(sample):
            lo, hi = np.quantile(np.clip(power_law(pool, *sample.T), 0, 1), [0.025, 0.975])
            n_lo, n_hi = np.quantile(labels_within(sample, pool, tolerance), [0.025, 0.975])
            score_interval, labels_interval = (float(lo), float(hi)), (int(np.floor(n_lo)), int(np.ceil(n_hi)))
    return Forecast(tuple(float(p) for p in params), pool, tolerance, score, needed,  # type: ignore[arg-type]
                    score_interval, labels_interval)
