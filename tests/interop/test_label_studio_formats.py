"""Label Studio's result formats: crackal's brush RLE against the official SDK both ways,
polygons and rectangles against hand-computed pixels and boxes, and broken input."""

import numpy as np
import pytest

from crackal.errors import CrackalError
from crackal.interop.label_studio import (
    box_from_rectangle,
    brush_result,
    decode_rle,
    encode_rle,
    mask_from_results,
    mask_to_rle,
    polygon_mask,
    rectangle_result,
    rle_to_mask,
)

brush = pytest.importorskip("label_studio_sdk.converter.brush", reason="label-studio-sdk (test extra, installed by scripts/setup.sh)")

SHAPES = [(1, 1), (1, 9), (7, 3), (13, 29), (64, 100), (257, 255)]


def masks(rng):
    """Random masks of odd sizes: empty, full, sparse, dense, a run longer than 2**16 values."""
    for shape in SHAPES:
        yield np.zeros(shape, bool)
        yield np.ones(shape, bool)
        for share in (0.01, 0.3, 0.9):
            yield rng.random(shape) < share
    big = np.zeros((300, 250), bool)
    big[150, 3] = True
    yield big


@pytest.mark.parametrize("seed", [0, 1])
def test_binary_masks_round_trip_through_the_sdk_both_ways(seed):
    for mask in masks(np.random.default_rng(seed)):
        height, width = mask.shape
        ours = mask_to_rle(mask)
        sdk_decoded = brush.decode_rle(ours).reshape(height, width, 4)
        assert (sdk_decoded[:, :, 3] == mask * 255).all() and (sdk_decoded == sdk_decoded[:, :, :1]).all()
        theirs = brush.mask2rle(mask.astype(np.uint8) * 255)
        assert (rle_to_mask(theirs, height, width) == mask).all()
        assert ours == theirs  # the same bytes, not only the same pixels


def test_multi_class_masks_round_trip_through_the_sdk_as_one_result_per_class():
    rng = np.random.default_rng(3)
    names = ["background", "crack", "pothole", "patch"]
    for shape in SHAPES:
        mask = rng.integers(0, 4, shape).astype(np.uint8)
        results = [brush_result(mask == k, names[k]) for k in range(1, 4)]
        for result, k in zip(results, range(1, 4)):
            decoded = brush.decode_rle(result["value"]["rle"]).reshape(*shape, 4)[:, :, 3]
            assert (decoded == (mask == k) * 255).all()
            result["value"]["rle"] = brush.mask2rle(((mask == k) * 255).astype(np.uint8))  # re-encoded by the SDK
        assert (mask_from_results(results, names, *shape) == mask).all()


def test_raw_values_round_trip_including_literal_records():
    rng = np.random.default_rng(4)
    for values in (rng.integers(0, 256, 1000), rng.integers(0, 2, 777), np.zeros(2**17 + 3), np.arange(256)):
        values = values.astype(np.uint8)
        assert encode_rle(values) == brush.encode_rle(values)
        assert (decode_rle(brush.encode_rle(values)) == values).all()


def test_brush_result_has_label_studios_fields():
    mask = np.zeros((5, 8), bool)
    mask[1:3, 2:6] = True
    result = brush_result(mask, "crack", from_name="label", to_name="image")
    assert result["type"] == "brushlabels" and result["value"]["brushlabels"] == ["crack"]
    assert result["value"]["format"] == "rle"
    assert (result["original_width"], result["original_height"]) == (8, 5)


def test_polygon_in_percent_covers_the_pixels_whose_centres_are_inside():
    # a triangle over a 10 x 10 image: (0, 0), (95 %, 0), (0, 95 %) are pixels (0, 0), (9.5, 0), (0, 9.5);
    # pixel (row r, col c) has its centre at (c + 0.5, r + 0.5), inside when c + r + 1 < 9.5
    mask = polygon_mask([[0, 0], [95, 0], [0, 95]], 10, 10)
    expected = np.add.outer(np.arange(10), np.arange(10)) + 1 < 9.5
    assert (mask == expected).all()
    # a rectangle of 30 % x 50 % from (20 %, 10 %) on 20 wide x 10 high: columns 4..9, rows 1..5
    mask = polygon_mask([[20, 10], [50, 10], [50, 60], [20, 60]], 10, 20)
    assert set(zip(*np.nonzero(mask))) == {(r, c) for r in range(1, 6) for c in range(4, 10)}
    assert not polygon_mask([[0, 0], [50, 50]], 10, 10).any()  # two points enclose nothing


def test_rectangles_to_and_from_boxes():
    result = rectangle_result((40, 10, 100, 70), "pothole", width=200, height=100)
    value = result["value"]
    assert (value["x"], value["y"], value["width"], value["height"]) == (20.0, 10.0, 30.0, 60.0)
    assert box_from_rectangle(value, 200, 100) == (40.0, 10.0, 100.0, 70.0)
    # turned 90 degrees clockwise about its top-left corner (40, 10): the 60 x 60 box goes left of it
    turned = box_from_rectangle({**value, "rotation": 90}, 200, 100)
    assert turned == pytest.approx((0.0, 10.0, 40.0, 70.0))  # x from -20, clipped to the image
    with pytest.raises(CrackalError, match="numeric x, y, width and height"):
        box_from_rectangle({"x": 1, "y": 2}, 10, 10)


def test_results_paint_in_order_and_ignore_other_tool_types():
    names = ["background", "crack", "patch"]
    patch = {"type": "polygonlabels", "value": {"points": [[0, 0], [100, 0], [100, 100], [0, 100]], "polygonlabels": ["patch"]}}
    line = np.zeros((4, 6), bool)
    line[2] = True
    crack = brush_result(line, "crack")
    choice = {"type": "choices", "value": {"choices": ["no defect"]}}
    mask = mask_from_results([patch, crack, choice], names, 4, 6)
    assert (mask[2] == 1).all() and (mask[[0, 1, 3]] == 2).all()


def test_broken_results_get_one_clear_error():
    names = ["background", "crack"]
    good = brush_result(np.ones((4, 4), bool), "crack")
    with pytest.raises(CrackalError, match="needs 48"):
        mask_from_results([good], names, 3, 4)  # drawn on another image size
    with pytest.raises(CrackalError, match="truncated"):
        rle_to_mask(good["value"]["rle"][:7], 4, 4)
    with pytest.raises(CrackalError, match="one of the project's classes"):
        mask_from_results([{**good, "value": {**good["value"], "brushlabels": ["pothole"]}}], names, 4, 4)
    with pytest.raises(CrackalError, match="'rle' format"):
        mask_from_results([{**good, "value": {"format": "png", "brushlabels": ["crack"]}}], names, 4, 4)
    with pytest.raises(CrackalError, match="list of byte values"):
        decode_rle([1, 2, 300])
