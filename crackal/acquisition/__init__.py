"""Acquisition: pixel heuristics, per-image reductions, batch selection, streaming pool scores."""

from crackal.acquisition.heuristics import HEURISTICS, STRATEGIES, pixel_scores
from crackal.acquisition.reduce import DEFAULT_REDUCTION, REDUCTIONS, reduce_scores
from crackal.acquisition.score import score_pool
from crackal.acquisition.select import kcenter_greedy, select_random, select_stochastic, select_top

__all__ = [
    "DEFAULT_REDUCTION",
    "HEURISTICS",
    "REDUCTIONS",
    "STRATEGIES",
    "kcenter_greedy",
    "pixel_scores",
    "reduce_scores",
    "score_pool",
    "select_random",
    "select_stochastic",
    "select_top",
]
