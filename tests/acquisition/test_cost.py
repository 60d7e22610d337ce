"""Cost-aware acquisition: mask features, the cost model and its fallback, score per second."""

import numpy as np
import pytest

from crackal.acquisition.cost import (
    FEATURES,
    MIN_SECONDS,
    SIMULATED_COST,
    cost_aware_scores,
    crack_classes,
    fit_cost_model,
    mask_features,
    masks_features,
    simulated_seconds,
)
from crackal.acquisition.select import select_top


def _disc(mask: np.ndarray, y: int, x: int, r: int, value: int) -> None:
    yy, xx = np.ogrid[: mask.shape[0], : mask.shape[1]]
    mask[(yy - y) ** 2 + (xx - x) ** 2 <= r * r] = value


def test_features_of_a_straight_crack_and_two_discs():
    mask = np.zeros((64, 64), np.uint8)
    mask[20, 5:45] = 1  # a crack 40 px long, one pixel wide
    assert mask_features(mask, [1]).tolist() == [40.0, 1.0, 40.0]
    thick = np.zeros((64, 64), np.uint8)
    thick[19:22, 5:45] = 1  # three pixels wide: the skeleton is still about 40 px
    skeleton, regions, area = mask_features(thick, [1])
    assert 36 <= skeleton <= 40 and regions == 1 and area == 120
    discs = np.zeros((64, 64), np.uint8)
    _disc(discs, 15, 15, 6, 2)
    _disc(discs, 45, 45, 6, 2)  # two potholes: two regions, no crack skeleton
    skeleton, regions, area = mask_features(discs, crack_classes(["background", "crack", "pothole"]))
    assert (skeleton, regions) == (0.0, 2.0) and area == (discs > 0).sum()
    discs[0, 0] = 1  # a one-pixel speck is no region
    discs[1:3, 60] = 255  # the ignore index is no defect
    assert mask_features(discs, [1])[1] == 2
    assert mask_features(np.zeros((8, 8), np.uint8), [1]).tolist() == [0.0, 0.0, 0.0]
    assert masks_features([mask, discs], [1]).shape == (2, len(FEATURES))


def test_the_cost_model_recovers_known_coefficients():
    rng = np.random.default_rng(0)
    features = np.column_stack([rng.uniform(0, 400, 40), rng.integers(0, 6, 40), rng.uniform(0, 3000, 40)])
    seconds = 12.0 + 0.05 * features[:, 0] + 7.0 * features[:, 1] + 0.002 * features[:, 2]
    model = fit_cost_model(features, seconds, fallback_seconds=30.0)
    assert model.source == "measured" and model.measured == 40
    assert model.intercept == pytest.approx(12.0, abs=1e-6)
    assert [model.coefficients[f] for f in FEATURES] == pytest.approx([0.05, 7.0, 0.002], abs=1e-6)
    assert model.predict(features) == pytest.approx(seconds)
    # the simulated labeller's times are fitted exactly, area left at zero
    model = fit_cost_model(features, simulated_seconds(features), 30.0)
    assert model.intercept == pytest.approx(SIMULATED_COST["intercept"], abs=1e-6)
    assert model.coefficients == pytest.approx({k: SIMULATED_COST[k] for k in FEATURES}, abs=1e-6)
    assert model.as_dict()["residual_seconds"] == pytest.approx(0, abs=1e-3)
    # a negative effect is clipped at zero (non-negative least squares)
    model = fit_cost_model(features, 20.0 - 0.01 * features[:, 0], 30.0)
    assert model.coefficients["skeleton_px"] == 0


def test_before_enough_measured_labels_the_model_is_the_estimate():
    features, seconds = np.array([[100.0, 2, 400]] * 9), np.array([90.0] * 9)
    model = fit_cost_model(features, seconds, fallback_seconds=30.0)
    assert (model.source, model.measured, model.intercept) == ("estimate", 9, 30.0)
    assert model.predict(np.array([[0.0, 0, 0], [500, 9, 9000]])).tolist() == [30.0, 30.0]
    scores = np.array([0.3, 0.9, 0.5])  # a constant cost: the same order as the scores
    assert select_top(cost_aware_scores(scores, model.predict(np.zeros((3, 3)))), 3).tolist() == [1, 2, 0]
    assert fit_cost_model(features, seconds, 30.0, minimum=5).source == "measured"


def test_cost_aware_selection_prefers_the_cheaper_of_two_equally_uncertain_images():
    long_crack, short_crack = np.zeros((64, 64), np.uint8), np.zeros((64, 64), np.uint8)
    long_crack[10, 2:62] = 1
    long_crack[40, 2:62] = 1
    short_crack[30, 20:35] = 1
    features = masks_features([long_crack, short_crack], [1])
    model = fit_cost_model(features.repeat(10, 0), simulated_seconds(features).repeat(10), 30.0)
    seconds = model.predict(features)
    assert seconds[0] > seconds[1]
    scores = np.array([0.5, 0.5])
    assert select_top(cost_aware_scores(scores, seconds), 1).tolist() == [1]
    assert select_top(scores, 1).tolist() == [0]  # without costs: the first of the tie
    assert cost_aware_scores(np.array([1.0]), np.array([0.0]))[0] == 1.0 / MIN_SECONDS  # never divides by zero
