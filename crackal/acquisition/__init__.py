"""Acquisition: pixel heuristics, per-image reductions, batch selection, streaming pool scores."""

from crackal.acquisition.heuristics import HEURISTICS, pixel_scores
from crackal.acquisition.reduce import REDUCTIONS, reduce_scores
from crackal.acquisition.score import score_pool
from crackal.acquisition.select import kcenter_greedy, select_random, select_stochastic, select_top

__all__ = [
    "HEURISTICS",
    "REDUCTIONS",
    "kcenter_greedy",
    "pixel_scores",
    "reduce_scores",
    "score_pool",
    "select_random",
    "select_stochastic",
    "select_top",
]
