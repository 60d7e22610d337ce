"""Cost-aware acquisition: what labelling an image will cost, and uncertainty per second.

A crack tile with a long branching crack takes a labeller far longer to trace than a tile
with one short crack or none; an acquisition score that ignores it spends the labelling
hours on the dearest images. Here the cost of an image is predicted from its *predicted*
mask, and the cost-aware score is the acquisition score divided by that cost: information
per labelling second (the "return on investment" rule of cost-sensitive active learning,
Settles, Craven and Friedland 2008, "Active learning with real annotation costs").

- ``mask_features``: what a class mask asks of a labeller: the skeleton length (pixels) of
  its crack classes (what a brush traces), its connected defect regions (each one a new
  stroke, a new zoom) and its defect area (pixels).
- ``fit_cost_model``: seconds ~ intercept + a x skeleton + b x regions + c x area, by
  non-negative least squares (``scipy.optimize.nnls``: a longer crack never costs less) on
  the labels whose time was measured (or simulated), features taken from the stored labels.
  Before ``crackal.active.effort.MIN_MEASURED`` measured labels it is the config's estimate,
  a constant ``seconds_per_image``: every image costs the same, so cost-aware selection
  picks exactly what its base strategy picks.
- ``cost_aware_scores``: score / predicted seconds (a prediction is floored at
  ``MIN_SECONDS``, so a predicted-empty image with a zero intercept is not infinitely cheap).
- ``SIMULATED_COST``: the simulated labeller's time (``simulated_seconds``), a documented
  function of the ground truth, so that simulations report F1 against labelling seconds.

>>> mask = np.zeros((32, 32), np.uint8); mask[10, 2:22] = 1   # one straight crack, 20 px long
>>> mask_features(mask, [1]).tolist()
[20.0, 1.0, 20.0]
>>> model = fit_cost_model(np.array([[20.0, 1, 20]] * 3), np.array([30.0] * 3), fallback_seconds=30.0, minimum=10)
>>> model.source, model.predict(np.array([[100.0, 4, 300]])).tolist()
('estimate', [30.0])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

FEATURES = ("skeleton_px", "regions", "area_px")
MIN_REGION_PIXELS = 4  # connected defect regions smaller than this are not counted (speckle of a predicted mask)
MIN_SECONDS = 1.0  # the least a predicted labelling time can be

# The simulated labeller's seconds for one image (``simulated_seconds``): an assumption, not a
# measurement. 10 s to look at a tile and submit it, 0.08 s per pixel of crack skeleton
# traced (12.5 px/s with a brush, zoomed in), 6 s per connected defect region (a new stroke
# or polygon, with the zoom and pan to reach it). The constants are chosen so that on the
# CrackForest pool of ``benchmarks/cost_aware_al.py`` (160x160 tiles) a tile holding cracks
# costs a median 29 s (mean 33 s, 10-90 % 19-48 s), the ``seconds_per_image`` estimate of
# ``ALConfig`` (30 s), and a crack-free tile 10 s.
SIMULATED_COST = {"intercept": 10.0, "skeleton_px": 0.08, "regions": 6.0, "area_px": 0.0}


def crack_classes(class_names: Sequence[str]) -> list[int]:
    """The indices of the line-like classes whose skeleton a labeller traces: the defect
    classes named like ``crack`` (``crack``, ``sealed_crack`` ...), else every defect class.

    >>> crack_classes(["background", "crack", "pothole"]), crack_classes(["background", "defect"])
    ([1], [1])
    """
    named = [i for i, name in enumerate(class_names) if i and "crack" in name.lower()]
    return named or list(range(1, len(class_names)))


def mask_features(mask: np.ndarray, cracks: Sequence[int]) -> np.ndarray:
    """``(3,)`` float: skeleton length in pixels of the ``cracks`` classes (``skimage``'s
    skeletonize, one pixel per skeleton pixel), the number of 8-connected defect regions
    (any class > 0, ignore index 255 left out) of at least ``MIN_REGION_PIXELS`` pixels, and
    the defect area in pixels. ``mask``: an ``(H, W)`` class mask."""
    from scipy import ndimage
    from skimage.morphology import skeletonize

    mask = np.asarray(mask)
    defect = (mask > 0) & (mask != 255)
    if not defect.any():
        return np.zeros(len(FEATURES))
    crack = np.isin(mask, list(cracks))
    skeleton = float(skeletonize(crack).sum()) if crack.any() else 0.0
    labels, count = ndimage.label(defect, structure=np.ones((3, 3), bool))
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    return np.array([skeleton, float((sizes >= MIN_REGION_PIXELS).sum()), float(defect.sum())])


def masks_features(masks, cracks: Sequence[int]) -> np.ndarray:
    """``(N, 3)``: ``mask_features`` of each class mask of an iterable."""
    rows = [mask_features(mask, cracks) for mask in masks]
    return np.stack(rows) if rows else np.zeros((0, len(FEATURES)))


def simulated_seconds(features: np.ndarray) -> np.ndarray:
    """The simulated labeller's seconds for images of these ``(N, 3)`` (or ``(3,)``) ground-truth
    features: ``SIMULATED_COST`` (10 + 0.08 x skeleton px + 6 x regions).

    >>> float(simulated_seconds(np.array([100.0, 2, 400])))
    30.0
    """
    coefficients = np.array([SIMULATED_COST[name] for name in FEATURES])
    return SIMULATED_COST["intercept"] + np.asarray(features, dtype=np.float64) @ coefficients


@dataclass(frozen=True)
class CostModel:
    """Predicted labelling seconds = ``intercept`` + sum of ``coefficients[f]`` x feature ``f``
    (floored at ``MIN_SECONDS``). ``source``: ``measured`` (fitted on ``measured`` timed
    labels) or ``estimate`` (the config's constant seconds per image)."""

    intercept: float
    coefficients: dict[str, float] = field(default_factory=lambda: dict.fromkeys(FEATURES, 0.0))
    source: str = "estimate"
    measured: int = 0
    residual_seconds: float | None = None  # root-mean-square error of the fit on its own data

    def predict(self, features: np.ndarray) -> np.ndarray:
        """``(N,)`` predicted seconds for ``(N, 3)`` features (``FEATURES`` order)."""
        features = np.asarray(features, dtype=np.float64).reshape(-1, len(FEATURES))
        weights = np.array([self.coefficients[name] for name in FEATURES])
        return np.maximum(MIN_SECONDS, self.intercept + features @ weights)

    def as_dict(self) -> dict:
        """The model as JSON values (recorded with each round's metrics)."""
        return {"source": self.source, "measured": self.measured, "intercept": round(self.intercept, 4),
                "coefficients": {k: round(v, 6) for k, v in self.coefficients.items()},
                "residual_seconds": None if self.residual_seconds is None else round(self.residual_seconds, 3)}


def fit_cost_model(features: np.ndarray, seconds: np.ndarray, fallback_seconds: float, minimum: int = 10) -> CostModel:
    """The cost model of ``(n, 3)`` label features and their ``(n,)`` measured seconds: a
    non-negative least-squares fit of seconds ~ intercept + features once ``minimum`` labels
    are measured (a project passes ``crackal.active.effort.MIN_MEASURED``), else the constant
    ``fallback_seconds`` (the config's ``seconds_per_image``)."""
    from scipy.optimize import nnls

    features = np.asarray(features, dtype=np.float64).reshape(-1, len(FEATURES))
    seconds = np.asarray(seconds, dtype=np.float64)
    if len(seconds) < max(1, minimum):
        return CostModel(float(fallback_seconds), measured=len(seconds))
    design = np.column_stack([np.ones(len(seconds)), features])
    scale = np.abs(design).max(0)
    scale[scale == 0] = 1.0  # a feature that is 0 everywhere keeps a 0 coefficient
    solution, _ = nnls(design / scale, seconds)
    solution = solution / scale
    residual = float(np.sqrt(np.mean((design @ solution - seconds) ** 2)))
    return CostModel(float(solution[0]), dict(zip(FEATURES, map(float, solution[1:]))), "measured", len(seconds), residual)


def cost_aware_scores(scores: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Acquisition score per predicted labelling second (``seconds`` floored at ``MIN_SECONDS``).

    >>> cost_aware_scores(np.array([0.6, 0.6]), np.array([60.0, 20.0])).tolist()
    [0.01, 0.03]
    """
    return np.asarray(scores, dtype=np.float64) / np.maximum(MIN_SECONDS, np.asarray(seconds, dtype=np.float64))
