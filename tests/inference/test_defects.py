"""Defect instances on drawn masks with known answers."""

import json

import numpy as np
import pytest
from skimage.draw import polygon

from crackal.errors import OptionError
from crackal.inference.defect_list import DefectList
from crackal.inference.defects import DefectOptions, defects_by_blocks, extract_defects, severity_bands
from crackal.inference.skeleton import skeleton_graph

NAMES = ["background", "crack"]


def band(shape, centre, angle_deg, length, width):
    """A straight crack: a rectangle of ``length`` x ``width`` px rotated ``angle_deg``
    counter-clockwise from the x axis, rasterised by pixel centres."""
    t = np.radians(angle_deg)
    c = np.asarray(centre, float)
    u, n = np.array([np.cos(t), -np.sin(t)]), np.array([np.sin(t), np.cos(t)])  # (x, y), y down
    corners = [c - u * length / 2 - n * width / 2, c + u * length / 2 - n * width / 2,
               c + u * length / 2 + n * width / 2, c - u * length / 2 + n * width / 2]
    mask = np.zeros(shape, np.uint8)
    rr, cc = polygon([p[1] - 0.5 for p in corners], [p[0] - 0.5 for p in corners], shape)
    mask[rr, cc] = 1
    return mask


@pytest.mark.parametrize("width", [1, 2, 3, 5, 8])
def test_straight_crack_length_and_width(width):
    mask = np.zeros((100, 300), np.uint8)
    mask[50 : 50 + width, 40:240] = 1  # 200 px long
    (crack,) = extract_defects(mask, NAMES)
    assert crack["length_px"] == pytest.approx(200, rel=0.02)
    for stat in ("mean", "median"):
        assert crack[f"width_{stat}_px"] == pytest.approx(width, abs=0.5)
    assert crack["width_area_px"] == pytest.approx(width, abs=0.1)
    assert crack["bbox"] == [40, 50, 240, 50 + width]
    assert crack["area_px"] == 200 * width


@pytest.mark.parametrize("angle", [10, 30, 45, 70])
def test_inclined_crack_length(angle):
    mask = band((400, 400), (200, 200), angle, 200, 3)
    (crack,) = extract_defects(mask, NAMES)
    assert crack["length_px"] == pytest.approx(200, rel=0.02)
    assert crack["width_area_px"] == pytest.approx(mask.sum() / 200, rel=0.03)  # the drawn width, as rasterised
    assert crack["orientation_deg"] == pytest.approx(angle, abs=1)


def test_gsd_gives_metres_and_severity():
    mask = np.zeros((100, 300), np.uint8)
    mask[50:55, 40:240] = 1
    (crack,) = extract_defects(mask, NAMES, gsd_m=0.002)  # 2 mm/px: 10 mm wide -> moderate (LTPP 6 / 19 mm)
    assert crack["length_m"] == pytest.approx(0.4, rel=0.02)
    assert crack["width_mean_mm"] == pytest.approx(10, abs=1)
    assert crack["severity"] == "moderate"
    assert extract_defects(mask, NAMES, gsd_m=0.001)[0]["severity"] == "low"
    assert extract_defects(mask, NAMES, gsd_m=0.005)[0]["severity"] == "high"
    assert extract_defects(mask, NAMES)[0]["severity"] == "unknown"
    bridge = DefectOptions(severity="bridge")
    assert extract_defects(mask, NAMES, bridge, gsd_m=0.0001)[0]["severity"] == "moderate"  # 0.5 mm
    assert extract_defects(mask, NAMES, bridge, gsd_m=0.00005)[0]["severity"] == "low"  # 0.25 mm
    assert extract_defects(mask, NAMES, DefectOptions(severity="bridge", severity_width="max"), gsd_m=0.0002)[0]["severity"] == "moderate"


def test_transverse_longitudinal_and_diagonal():
    across = band((300, 300), (150, 150), 0, 200, 3)  # left-right: across a road that runs up the image
    along = band((300, 300), (150, 150), 90, 200, 3)
    slanted = band((300, 300), (150, 150), 45, 200, 3)
    assert extract_defects(across, NAMES)[0]["type"] == "transverse"
    assert extract_defects(along, NAMES)[0]["type"] == "longitudinal"
    assert extract_defects(slanted, NAMES)[0]["type"] == "diagonal"
    sideways = DefectOptions(travel_direction_deg=0)  # a camera whose image x axis follows the road
    assert extract_defects(across, NAMES, sideways)[0]["type"] == "longitudinal"
    assert extract_defects(along, NAMES, sideways)[0]["type"] == "transverse"


def grid(spacing: int, cells: int = 6, width: int = 2, margin: int = 10) -> np.ndarray:
    size = 2 * margin + spacing * cells + width
    mask = np.zeros((size, size), np.uint8)
    for k in range(margin, size - margin, spacing):
        mask[k : k + width, margin : size - margin] = 1
        mask[margin : size - margin, k : k + width] = 1
    return mask


def test_grid_is_a_network_alligator_or_block_by_cell_size():
    mask = grid(20)
    (net,) = extract_defects(mask, NAMES)
    assert net["loops"] == 36 and net["branch_points"] >= 36
    assert net["type"] == "alligator"  # 20 px cells, no GSD: below 2500 px^2
    assert extract_defects(mask, NAMES, gsd_m=0.01)[0]["type"] == "alligator"  # 0.2 m cells: 0.04 m^2
    assert extract_defects(mask, NAMES, gsd_m=0.03)[0]["type"] == "block"  # 0.6 m cells: 0.36 m^2
    assert extract_defects(grid(60, cells=3), NAMES)[0]["type"] == "block"  # 60 px cells without GSD


def test_branched_single_crack_is_not_a_network():
    mask = np.zeros((200, 200), np.uint8)
    mask[100:103, 20:180] = 1
    mask[20:100, 100:103] = 1  # a T
    (crack,) = extract_defects(mask, NAMES)
    assert crack["loops"] == 0 and crack["branch_points"] == 1 and crack["type"] == "transverse"
    assert len(crack["lines"]) == 3
    assert crack["length_px"] == pytest.approx(160 + 80, rel=0.02)


def test_fragments_within_the_gap_are_one_crack():
    mask = np.zeros((60, 260), np.uint8)
    mask[30:33, 10:100] = 1
    mask[30:33, 104:200] = 1  # 4 px gap
    mask[10:12, 150:250] = 1  # 18 px above: another crack
    cracks = extract_defects(mask, NAMES)
    assert len(cracks) == 2
    merged = next(c for c in cracks if c["bbox"][1] == 30)
    assert merged["bbox"] == [10, 30, 200, 33]
    assert merged["length_px"] == pytest.approx(90 + 96, rel=0.03)  # the gap is not counted
    assert len(extract_defects(mask, NAMES, DefectOptions(gap_px=2))) == 3
    assert len(extract_defects(mask, NAMES, DefectOptions(gap_px=25))) == 1


def test_short_specks_are_dropped():
    mask = np.zeros((50, 50), np.uint8)
    mask[10, 10:15] = 1
    assert extract_defects(mask, NAMES) == []
    assert len(extract_defects(mask, NAMES, DefectOptions(min_length_px=2))) == 1


def test_crack_across_block_borders_is_counted_once():
    mask = np.zeros((300, 300), np.uint8)
    mask[150:153, 5:295] = 1  # crosses four block borders
    mask[10:290, 77:79] = 1  # ... and another crossing, making a cross
    mask += band((300, 300), (200, 60), 45, 120, 3) * (mask == 0)  # a diagonal through a block corner
    mask[40:42, 200:260] = 1
    mask[62:64, 200:260] = 1  # 20 px below: separate unless bridged
    whole = extract_defects(mask, NAMES)
    for block in (64, 100, 128):
        parts = defects_by_blocks(lambda r0, r1, c0, c1: mask[r0:r1, c0:c1], 300, 300, NAMES, block=block)
        assert [(d["bbox"], d["length_px"], d["type"]) for d in parts] == [(d["bbox"], d["length_px"], d["type"]) for d in whole]
    # kept on disk (the huge-raster path), the same defects in the same order
    on_disk = defects_by_blocks(lambda r0, r1, c0, c1: mask[r0:r1, c0:c1], 300, 300, NAMES, block=64, found=DefectList())
    assert isinstance(on_disk, DefectList) and list(on_disk) == json.loads(json.dumps(parts))
    # two fragments either side of a block border, 3 px apart: one crack in blocks as in one piece
    split = np.zeros((128, 128), np.uint8)
    split[60:62, 10:63] = 1
    split[60:62, 66:120] = 1
    parts = defects_by_blocks(lambda r0, r1, c0, c1: split[r0:r1, c0:c1], 128, 128, NAMES, block=64)
    assert len(parts) == 1 and parts[0]["bbox"] == [10, 60, 120, 62]


def test_defect_list_keeps_records_on_disk_in_order():
    records = DefectList({"id": i, "bbox": [10 - i, i, 0, 0], "lines": [[[0.5, 1.5]]]} for i in range(5))
    records.append({"id": 5, "bbox": [7, 0, 0, 0], "lines": []})
    assert len(records) == 6 and records[2] == {"id": 2, "bbox": [8, 2, 0, 0], "lines": [[[0.5, 1.5]]]}
    records[0]["id"] = 99  # a copy: the list is unchanged
    assert records[0]["id"] == 0 and records[-1]["id"] == 5
    records.sort(key=lambda d: d["bbox"][0])  # stable, like list.sort
    assert [d["id"] for d in records] == [4, 3, 5, 2, 1, 0] and [d["id"] for d in records[1:3]] == [3, 5]
    assert not DefectList()


def test_huge_instances_are_measured_piece_by_piece():
    mask = np.zeros((100, 300), np.uint8)
    mask[50:53, 10:290] = 1
    parts = defects_by_blocks(lambda r0, r1, c0, c1: mask[r0:r1, c0:c1], 100, 300, NAMES, block=100, max_instance_px=500)
    assert len(parts) == 3 and len({p["group"] for p in parts}) == 1
    assert sum(p["length_px"] for p in parts) == pytest.approx(280, rel=0.05)


def test_regions_are_polygons_with_area():
    mask = np.zeros((100, 100), np.uint8)
    mask[20:40, 30:60] = 2  # a pothole
    mask[80:82, 80:83] = 2  # a speck: dropped
    (pothole,) = extract_defects(mask, ["background", "crack", "pothole"], gsd_m=0.01)
    assert pothole["class"] == "pothole" and pothole["type"] == "region"
    assert pothole["area_px"] == 600 and pothole["area_m2"] == pytest.approx(0.06)
    assert pothole["bbox"] == [30, 20, 60, 40]
    (ring,) = pothole["polygons"]
    xs, ys = np.array(ring).T
    assert xs.min() == pytest.approx(30, abs=0.6) and xs.max() == pytest.approx(60, abs=0.6)
    assert ys.min() == pytest.approx(20, abs=0.6) and ys.max() == pytest.approx(40, abs=0.6)


def test_alligator_class_is_always_alligator():
    mask = np.zeros((100, 300), np.uint8)
    mask[50:53, 40:240] = 1
    assert extract_defects(mask, ["background", "alligator_crack"])[0]["type"] == "alligator"


def test_skeleton_graph_counts_loops_and_branches():
    ring = np.zeros((20, 20), bool)
    ring[5, 5:15] = ring[14, 5:15] = ring[5:15, 5] = ring[5:15, 14] = True
    g = skeleton_graph(ring)
    assert g.loops() == 1 and g.branch_points() == 0 and g.length == pytest.approx(36)
    assert len(g.paths()) == 1


def test_severity_options():
    assert severity_bands("pavement").bounds_mm == (6.0, 19.0)
    assert severity_bands("0.1,0.2,0.4").names == ("class1", "class2", "class3", "class4")
    with pytest.raises(OptionError, match="severity"):
        severity_bands("wide")
    with pytest.raises(OptionError, match="severity"):
        severity_bands("2,1")
    with pytest.raises(OptionError, match="one name more"):
        severity_bands("1,2:a,b")
    with pytest.raises(OptionError, match="severity_width must be one of"):
        DefectOptions(severity_width="mode")
    with pytest.raises(OptionError, match="gap"):
        DefectOptions(gap_px=-1)


def test_a_ragged_prediction_of_one_crack_stays_one_crack():
    from scipy import ndimage

    rng = np.random.default_rng(0)
    clean = band((200, 400), (200, 100), 8, 300, 3).astype(bool)
    grown = ndimage.binary_dilation(clean, np.ones((3, 3), bool)) & ~clean
    noisy = clean | (grown & (rng.random(clean.shape) < 0.3))  # a ragged outline
    noisy[105:118, 120:123] = False  # and a break (the centre line passes y = 111 at x = 121.5)
    noisy[20:22, 50:52] = True  # and a speck
    assert ndimage.label(noisy, np.ones((3, 3)))[1] == 3
    (truth,) = extract_defects(clean.astype(np.uint8), NAMES)
    (crack,) = extract_defects(noisy.astype(np.uint8), NAMES)
    assert crack["type"] == truth["type"] == "transverse" and crack["loops"] == 0
    assert crack["length_px"] == pytest.approx(truth["length_px"], rel=0.05)


def test_skeleton_paths_cover_every_step_once():
    from skimage.morphology import skeletonize

    from crackal.data.synth import SynthOptions, synth_sample

    _, label = synth_sample(np.random.default_rng(3), (256, 256), SynthOptions(crack_free_fraction=0.0, max_cracks=6))
    skeleton = skeletonize(label > 0)
    skeleton[5, 5:15] = skeleton[14, 5:15] = skeleton[5:15, 5] = skeleton[5:15, 14] = True  # a loop without a node
    for trace in ("_walk", "_chains"):  # small skeletons are walked, large ones traced chain by chain
        graph = skeleton_graph(skeleton)
        paths = getattr(graph, trace)()
        steps = [(min(a, b), max(a, b)) for path in paths for a, b in zip(path[:-1], path[1:])]
        assert len(steps) == len(set(steps)) == graph.steps.nnz // 2
        assert all(graph.steps[a, b] > 0 for a, b in steps)
        assert sum(graph.path_length(p) for p in paths) == pytest.approx(graph.length)
        degree = graph.degree
        assert all(degree[p[0]] != 2 and degree[p[-1]] != 2 for p in paths if p[0] != p[-1])
        assert sum(p[0] == p[-1] and len(p) > 1 for p in paths) >= 1
