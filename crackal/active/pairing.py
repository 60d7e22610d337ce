"""Comparing active-learning runs over seeds: the mean and 95 % interval of a score over seeds,
and the random run each strategy is paired with (the same seed starts both from the same images)."""

from __future__ import annotations

import numpy as np


def interval95(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over seeds (axis 0) and the half-width of its 95 % interval (Student's t; NaN for one seed).

    >>> mean, half = interval95(np.array([[0.5], [0.7]]))
    >>> float(mean[0]), round(float(half[0]), 3)
    (0.6, 1.271)
    """
    from scipy.stats import t

    seeds = len(values)
    if seeds < 2:
        return values.mean(0), np.full(values.shape[1:], np.nan)
    return values.mean(0), t.ppf(0.975, seeds - 1) * values.std(0, ddof=1) / np.sqrt(seeds)


def confidence_bounds(mean: np.ndarray, half: np.ndarray) -> list[list[float] | None]:
    """``[low, high]`` of each mean (None where the interval is undefined: one seed)."""
    return [None if np.isnan(h) else [round(float(m - h), 4), round(float(m + h), 4)] for m, h in zip(mean, half)]


def difference_text(mean: float, bounds: list[float] | None) -> str:
    """A signed difference and its interval as text (no brackets without one).

    >>> difference_text(0.1234, [0.05, 0.196]), difference_text(-0.02, None)
    ('+0.123 [+0.050, +0.196]', '-0.020')
    """
    return f"{mean:+.3f}" + (f" [{bounds[0]:+.3f}, {bounds[1]:+.3f}]" if bounds else "")


def paired_cells(paired: dict) -> tuple[list[str], list[str]]:
    """The label counts and the cells of one strategy's paired difference (``paired_differences``),
    with the mean over the rounds after the first as the last column."""
    labelled = paired["labelled"]
    header = [str(n) for n in labelled]
    cells = [difference_text(m, c) for m, c in zip(paired["mean"], paired["ci95"])]
    if "after_first" in paired:
        header.append(f"mean over {labelled[1]}-{labelled[-1]}")
        cells.append(difference_text(paired["after_first"]["mean"], paired["after_first"]["ci95"]))
    return header, cells


def paired_baseline(strategy: str, strategies) -> str:
    """The run a strategy is paired with: random with the same start (``random+warm`` for a
    warm-started strategy when there is one), else ``random``.

    >>> paired_baseline("bald+warm", ["bald", "random", "bald+warm", "random+warm"])
    'random+warm'
    >>> paired_baseline("random+warm", ["random", "random+warm"])
    'random'
    >>> paired_baseline("bald+warm+diverse", ["random", "random+warm"]), paired_baseline("bald+diverse", ["random", "random+warm"])
    ('random+warm', 'random')
    >>> paired_baseline("bald+cost", ["random", "random+warm"]), paired_baseline("bald+warm+cost", ["random", "random+warm"])
    ('random', 'random+warm')
    """
    warm = "warm" in strategy.split("+")[1:] and strategy != "random+warm" and "random+warm" in strategies
    return "random+warm" if warm else "random"
