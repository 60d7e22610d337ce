"""The learning-curve forecast (inverse power law) and Cohen's kappa between predictions."""

from __future__ import annotations

import numpy as np
import pytest

from crackal.metrics.curves import fit_power_law, forecast_curve, labels_within, power_law
from crackal.metrics.segmentation import cohen_kappa


def test_power_law_fit_recovers_known_parameters():
    n = np.array([8, 16, 24, 32, 48, 64, 96, 128])
    truth = (0.72, 0.9, 0.55)
    noise = np.random.default_rng(0).normal(0, 0.002, len(n))
    params = fit_power_law(n, power_law(n, *truth) + noise)
    assert np.allclose(params, truth, atol=[0.02, 0.15, 0.08])


def test_forecast_brackets_the_truth_and_its_labels():
    n = np.array([10, 20, 30, 40, 60, 80])
    truth = (0.8, 1.2, 0.6)
    noisy = power_law(n, *truth) + np.random.default_rng(1).normal(0, 0.005, len(n))
    forecast = forecast_curve(n, noisy, pool=2000)
    assert forecast is not None and forecast.score_interval and forecast.labels_interval
    expected = float(power_law(2000, *truth))
    assert forecast.score_interval[0] <= expected <= forecast.score_interval[1]
    assert abs(forecast.score_at_pool - expected) < 0.03
    needed = float(labels_within(truth, 2000, 0.01))
    assert forecast.labels_interval[0] <= needed <= forecast.labels_interval[1]
    assert power_law(forecast.labels_needed, *forecast.params) >= forecast.score_at_pool - 0.01 - 1e-9


def test_forecast_needs_three_points():
    assert forecast_curve([10, 20], [0.3, 0.4], pool=100) is None
    three = forecast_curve([10, 20, 40], [0.3, 0.4, 0.45], pool=100)
    assert three is not None and three.score_interval is None  # an exact fit has no covariance
    assert 1 <= three.labels_needed <= 100


@pytest.mark.parametrize("classes", [2, 3])
def test_kappa_of_identical_masks_is_one(classes):
    mask = np.random.default_rng(2).integers(0, classes, (32, 32))
    assert cohen_kappa(mask, mask.copy(), classes) == pytest.approx(1.0)


def test_kappa_of_disjoint_masks_is_not_positive():
    first = np.zeros((32, 32), np.uint8)
    first[:, :8] = 1
    second = np.zeros((32, 32), np.uint8)
    second[:, 16:24] = 1
    assert cohen_kappa(first, second) <= 0
    halves = np.zeros((32, 32), np.uint8)
    halves[:, :16] = 1
    assert cohen_kappa(halves, 1 - halves) == pytest.approx(-1.0)
    half = first.copy()
    half[:16, :8] = 0
    assert 0 < cohen_kappa(first, half) < 1
