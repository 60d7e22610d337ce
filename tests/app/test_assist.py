"""The editor's labelling assists on synthetic images with a known answer: a traced path stays on
a dark line, a fill of a disc returns the disc, a fill of the background is refused."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.draw import disk, line

from crackal.app.assist import FULL_PIXELS, MAX_POINTS, SNAP, AssistError, assist_source, bounding_box, cost_of, fill, ridge_map, trace
from crackal.errors import CrackalError


def road(shape=(96, 128), seed=0) -> np.ndarray:
    """A noisy grey surface (uint8)."""
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(150, 12, shape), 0, 255).astype(np.uint8)


def crack(image: np.ndarray, corners: list[tuple[int, int]]) -> np.ndarray:
    """Draw a dark polyline through ``corners`` (x, y), 2 px wide; returns its 1 px centre line."""
    centre = np.zeros(image.shape[:2], bool)
    for (x0, y0), (x1, y1) in zip(corners, corners[1:]):
        rows, cols = line(y0, x0, y1, x1)
        centre[rows, cols] = True
    image[centre | np.roll(centre, 1, axis=1)] = 60
    return centre


def test_a_traced_path_follows_a_bent_dark_line_between_two_clicks():
    image = road()
    centre = crack(image, [(10, 20), (60, 70), (115, 30)])  # a V: the straight chord is far off it
    source = assist_source(image)
    assert source.source == "ridge" and source.full is not None
    path = trace(source, [(10.5, 20.5), (115.5, 30.5)])
    assert max(abs(path[0][0] - 10), abs(path[0][1] - 20)) <= SNAP and max(abs(path[-1][0] - 115), abs(path[-1][1] - 30)) <= SNAP
    near = np.zeros_like(centre)
    for dx in (-1, 0, 1, 2):  # the centre line, or the second column of the 2 px line
        near |= np.roll(centre, dx, axis=1)
    on_line = np.mean([near[y, x] for x, y in path])
    assert on_line == 1.0
    assert all(max(abs(a[0] - b[0]), abs(a[1] - b[1])) == 1 for a, b in zip(path, path[1:]))  # 8-connected


def test_several_points_are_joined_in_order_and_clicks_snap_to_the_line():
    image = road(seed=1)
    crack(image, [(5, 50), (120, 50)])
    path = trace(assist_source(image), [(5.5, 52.5), (60.2, 48.9), (118.5, 51.0)])  # clicks up to 2 px off
    assert {y for _, y in path} == {50}
    xs = [x for x, _ in path]
    assert xs == sorted(xs) and abs(xs[0] - 5) <= SNAP and abs(xs[-1] - 118) <= SNAP


def test_a_large_image_is_traced_in_windows_with_the_same_answer():
    image = road((1100, 1000), seed=2)
    centre = crack(image, [(100, 500), (400, 560), (700, 480)])
    windowed = assist_source(image)
    assert image.size > FULL_PIXELS and windowed.full is None  # the ridge is computed per window
    path = trace(windowed, [(100.5, 500.5), (400.5, 560.5), (700.5, 480.5)])
    whole = trace(cost_of(ridge_map(image)), [(100.5, 500.5), (400.5, 560.5), (700.5, 480.5)])
    assert len(path) > 550
    near = ndimage.binary_dilation(centre, iterations=2)
    assert all(near[y, x] for x, y in path) and all(near[y, x] for x, y in whole)  # both on the 2 px line


def test_a_probability_map_makes_the_cost():
    prob = np.zeros((40, 60), np.float32)
    prob[10:30, 30] = 0.9
    prob[30, 10:31] = 0.9  # an L
    source = assist_source(np.zeros((40, 60, 3), np.uint8), prob)
    assert source.source == "probability"
    path = trace(source, [(30.5, 10.5), (10.5, 30.5)])
    assert all(prob[y, x] > 0.5 for x, y in path)


def test_fill_of_a_disc_returns_the_disc_and_refuses_the_background():
    image = road((80, 100), seed=3)
    rows, cols = disk((40, 55), 15)
    image[rows, cols] = 70 + (np.arange(len(rows)) % 7)  # a dark pothole with some texture
    truth = np.zeros(image.shape, bool)
    truth[rows, cols] = True
    source = assist_source(image)
    region = fill(source.values, 55, 40)
    assert (region & truth).sum() / truth.sum() > 0.93  # all but some of the smoothed rim
    assert (region & ~truth).sum() / truth.sum() < 0.1
    assert bounding_box(region) is not None
    with pytest.raises(AssistError, match="covers .* of the image"):
        fill(source.values, 5, 5)  # the road around it
    assert fill(source.values, 5, 5, max_fraction=1.0).mean() > 0.7


def test_fill_on_a_probability_map_closes_holes():
    prob = np.zeros((50, 50), np.uint8)
    rows, cols = disk((25, 25), 10)
    prob[rows, cols] = 230
    prob[24:27, 24:27] = 20  # a hole the model missed
    region = fill(assist_source(np.zeros((50, 50)), prob).values, 20, 25)
    assert region.sum() == len(rows)


def test_bad_points_are_refused():
    cost = np.ones((10, 10), np.float32)
    with pytest.raises(CrackalError, match="outside"):
        trace(cost, [(1, 1), (10, 5)])
    with pytest.raises(CrackalError, match="outside"):
        trace(cost, [(1, 1), (float("nan"), 5)])
    with pytest.raises(CrackalError, match="at most"):
        trace(cost, [(1, 1)] * (MAX_POINTS + 1))
    with pytest.raises(CrackalError, match="tolerance"):
        fill(np.zeros((10, 10), np.uint8), 1, 1, tolerance=2)
    assert trace(cost, [(3.7, 4.2)]) == [(3, 4)]
