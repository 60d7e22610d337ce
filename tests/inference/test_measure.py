import numpy as np
import pytest

from crackal.inference.measure import crack_length_px, measure_defects
from crackal.inference.render import class_mask_from_probs, overlay


def test_straight_and_diagonal_length():
    m = np.zeros((50, 50), bool)
    m[25, 5:45] = True
    assert crack_length_px(m) == pytest.approx(39, abs=1)
    d = np.zeros((50, 50), bool)
    idx = np.arange(5, 45)
    d[idx, idx] = True
    assert crack_length_px(d) == pytest.approx(39 * np.sqrt(2), rel=0.03)


def test_thick_crack_length_is_its_centre_line():
    m = np.zeros((40, 60), bool)
    m[18:23, 10:50] = True  # 5 px wide, 40 px long
    length = crack_length_px(m)
    assert 30 <= length <= 41


def test_area_in_square_metres_and_width():
    mask = np.zeros((100, 100), np.uint8)
    mask[50:53, 10:90] = 1  # 3 px wide, 80 px long crack
    mask[5:15, 5:15] = 2  # 100 px pothole
    result = measure_defects(mask, ["background", "crack", "pothole"], gsd_m=0.002)
    assert result["crack"]["area_px"] == 240
    assert result["crack"]["area_m2"] == pytest.approx(240 * 0.002**2)
    assert result["crack"]["mean_width_px"] == pytest.approx(3, rel=0.15)
    assert result["crack"]["length_m"] == pytest.approx(0.16, rel=0.1)
    assert result["pothole"] == {"area_px": 100, "area_fraction": 0.01, "area_m2": pytest.approx(100 * 4e-6)}


def test_no_gsd_no_metres():
    result = measure_defects(np.zeros((8, 8), np.uint8), ["background", "crack"])
    assert result["crack"] == {"area_px": 0, "area_fraction": 0.0}


def test_masks_and_overlay():
    probs = np.zeros((2, 4, 4), np.float32)
    probs[1, 1, :] = 0.7
    probs[0] = 1 - probs[1]
    assert class_mask_from_probs(probs, 0.6)[1].tolist() == [1, 1, 1, 1]
    assert class_mask_from_probs(probs, 0.8).sum() == 0
    image = np.full((4, 4, 3), 100, np.uint8)
    out = overlay(image, class_mask_from_probs(probs, 0.5))
    assert (out[1, :, 0] > 150).all() and (out[0] == 100).all()
    blue = overlay(image, class_mask_from_probs(probs, 0.5), alpha=1.0, colors=[[0, 0, 0], [0, 0, 255]])
    assert blue[1, 0].tolist() == [0, 0, 255] and (blue[0] == 100).all()
