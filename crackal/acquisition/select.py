"""Choosing the next batch from per-image scores, and the cold-start (first) batch."""

from __future__ import annotations

import numpy as np

from crackal.errors import CrackalError


def _check(n: int, k: int) -> None:
    if n == 0:
        raise CrackalError("the unlabelled pool is empty: every image is labelled; add images or stop")
    if k < 1:
        raise CrackalError(f"the batch size must be at least 1, got {k}")


def select_top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` highest scores, highest first (ties broken by index)."""
    scores = np.asarray(scores, dtype=np.float64)
    _check(len(scores), k)
    return np.argsort(-scores, kind="stable")[: min(k, len(scores))]


def select_stochastic(scores: np.ndarray, k: int, temperature: float = 1.0, seed: int = 0) -> np.ndarray:
    """``k`` indices drawn without replacement with probability proportional to ``score^(1/T)``.

    Uses the Gumbel-top-k trick (equivalent to drawing one at a time). A low ``temperature``
    approaches top-k; a high one approaches uniform sampling. Images with score 0 come last.
    """
    scores = np.asarray(scores, dtype=np.float64)
    _check(len(scores), k)
    if temperature <= 0:
        raise CrackalError(f"the temperature must be > 0, got {temperature}")
    rng = np.random.default_rng(seed)
    with np.errstate(divide="ignore"):
        log_weights = np.log(np.clip(scores, 0, None)) / temperature
    keys = log_weights + rng.gumbel(size=len(scores))
    keys[~np.isfinite(keys)] = -np.inf
    order = np.lexsort((rng.random(len(scores)), -keys))  # -inf keys last, in random order
    return order[: min(k, len(scores))]


def select_random(n: int, k: int, seed: int = 0) -> np.ndarray:
    """``k`` distinct indices of ``range(n)`` in random order (all ``n`` when ``k > n``), seeded."""
    _check(n, k)
    return np.random.default_rng(seed).permutation(n)[: min(k, n)]


def kcenter_greedy(features: np.ndarray, k: int, seed: int = 0, chosen: np.ndarray | None = None) -> np.ndarray:
    """Coreset / k-center greedy: repeatedly take the point farthest from everything chosen.

    ``features (N, D)`` are standardised per dimension; ``chosen`` are indices already
    labelled (with none, the first centre is random). Returns up to ``k`` new indices in the
    order they were picked.
    """
    features = np.asarray(features, dtype=np.float64)
    n = len(features)
    _check(n, k)
    features = (features - features.mean(0)) / (features.std(0) + 1e-8)
    taken = [] if chosen is None else [int(i) for i in chosen]
    nearest = np.full(n, np.inf)
    for index in taken:
        nearest = np.minimum(nearest, np.linalg.norm(features - features[index], axis=1))
    nearest[taken] = -np.inf
    rng = np.random.default_rng(seed)
    picked: list[int] = []
    for _ in range(min(k, n - len(taken))):
        index = int(rng.integers(n)) if not taken and not picked else int(np.argmax(nearest))
        picked.append(index)
        nearest = np.minimum(nearest, np.linalg.norm(features - features[index], axis=1))
        nearest[picked] = -np.inf
    return np.array(picked, dtype=np.int64)
