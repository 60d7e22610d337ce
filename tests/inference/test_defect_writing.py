"""Writing defects at survey scale (one pass over the full records, the summary from light ones):
the files still hold what a small mask with known defects says, counted here by hand."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from crackal.inference.defect_list import DefectList
from crackal.inference.defects import DefectOptions, _too_short, bridge_labels, defects_by_blocks, extract_defects
from crackal.inference.geo import Georef
from crackal.inference.inspection import summary_record, write_inspection

GSD = 0.01  # m per px
CLASSES = ["background", "crack", "pothole"]


def known_mask() -> np.ndarray:
    mask = np.zeros((120, 200), np.uint8)
    mask[20:23, 10:110] = 1  # transverse crack: 3 px wide, 100 px long (crosses 64 px blocks)
    mask[40:110, 150:152] = 1  # longitudinal crack: 2 px wide, 70 px long
    mask[60:80, 20:50] = 2  # pothole: 20 x 30 px
    return mask


def _shoelace(points) -> float:
    x, y = np.asarray(points, float).T
    return abs(float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))) / 2


@pytest.fixture
def written(tmp_path):
    mask = known_mask()
    found = DefectList()
    defects_by_blocks(lambda r0, r1, c0, c1: mask[r0:r1, c0:c1], *mask.shape, CLASSES, DefectOptions(), GSD, block=64,
                      found=found)
    georef = Georef("raster", crs="EPSG:32633", transform=(GSD, 0.0, 500000.0, 0.0, -GSD, 4200000.0), width=200, height=120,
                    gsd_m=GSD)
    images = [{"image": "m.tif", "height": 120, "width": 200, "gsd_m": GSD, "georeferencing": "raster"}]
    paths = write_inspection(tmp_path, ({"image": "m.tif", **d} for d in found), images, {"m.tif": georef}, DefectOptions(),
                             threshold=0.5)
    return tmp_path, paths, list(found)


def test_the_defects_written_are_the_known_ones(written):
    out, paths, found = written
    assert paths["count"] == 3
    assert found == extract_defects(known_mask(), CLASSES, DefectOptions(), GSD), "blocks join to the whole-mask defects"
    defects = json.loads((out / "defects.json").read_text())["defects"]
    assert [d["id"] for d in defects] == [1, 2, 3]
    transverse, longitudinal, pothole = defects
    assert (transverse["class"], transverse["type"], transverse["area_px"]) == ("crack", "transverse", 300)
    assert transverse["bbox"] == [10, 20, 110, 23]
    assert transverse["length_px"] == pytest.approx(100, abs=2) and transverse["width_median_px"] == 3
    assert (longitudinal["type"], longitudinal["area_px"], longitudinal["bbox"]) == ("longitudinal", 140, [150, 40, 152, 110])
    assert longitudinal["length_px"] == pytest.approx(70, abs=2) and longitudinal["width_median_px"] == 2
    assert transverse["severity"] == "high" and longitudinal["severity"] == "high"  # 30 mm, 20 mm: above 19 mm
    assert (pothole["class"], pothole["type"], pothole["area_px"], pothole["bbox"]) == ("pothole", "region", 600, [20, 60, 50, 80])
    assert pothole["area_m2"] == pytest.approx(600 * GSD**2)
    assert _shoelace(pothole["polygons"][0]) == pytest.approx(600, rel=0.05)  # corners cut by the contour
    assert pothole["centroid"] == [35.0, 70.0]

    with (out / "defects.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [(r["id"], r["class"], r["type"], r["area_px"]) for r in rows] == [
        ("1", "crack", "transverse", "300"), ("2", "crack", "longitudinal", "140"), ("3", "pothole", "region", "600")]
    assert float(rows[2]["map_x"]) == pytest.approx(500000 + 35 * GSD) and float(rows[2]["map_y"]) == pytest.approx(4200000 - 70 * GSD)

    features = json.loads((out / "defects.geojson").read_text())["features"]
    assert [f["properties"]["id"] for f in features] == [1, 2, 3]
    ring = np.asarray(features[2]["geometry"]["coordinates"][0]) - [500000.0, 4200000.0]
    assert _shoelace(ring) == pytest.approx(_shoelace(pothole["polygons"][0]) * GSD**2, rel=1e-4)


def test_the_condition_summary_adds_up_the_known_defects(written):
    out, _, found = written
    with (out / "condition_images.csv").open() as f:
        (row,) = list(csv.DictReader(f))
    length = sum(d["length_m"] for d in found if d["class"] == "crack")
    assert (row["defects"], row["cracks"], row["pothole_count"]) == ("3", "2", "1")
    assert (row["transverse_count"], row["longitudinal_count"], row["high_count"]) == ("1", "1", "2")
    assert float(row["crack_length_m"]) == pytest.approx(length, abs=1e-4)
    assert float(row["crack_length_m"]) == pytest.approx(1.7, abs=0.04)  # 100 + 70 px of 1 cm
    assert float(row["surveyed_m2"]) == pytest.approx(120 * 200 * GSD**2)
    assert float(row["pothole_area_m2"]) == pytest.approx(0.06)
    report = (out / "condition.md").read_text()
    assert "1 image(s), 3 defect(s), 2 crack(s)" in report and "| transverse | - | - | 1 /" in report
    assert (out / "severity_map.png").stat().st_size > 0


def test_summary_records_keep_what_the_summary_reads_and_drop_the_geometry():
    crack = {"image": "a", "class": "crack", "type": "diagonal", "severity": "low", "length_px": 5.0, "area_px": 9,
             "lines": [[[0, 0], [1, 1]]], "bbox": [0, 0, 1, 1], "width_mean_px": 2.0}
    region = {"image": "a", "class": "patch", "type": "region", "severity": "unknown", "area_px": 40, "polygons": [[[0, 0]]]}
    assert summary_record(crack) == {"image": "a", "class": "crack", "type": "diagonal", "severity": "low", "length_px": 5.0,
                                     "area_px": 9, "lines": []}
    assert summary_record(region) == {"image": "a", "class": "patch", "type": "region", "severity": "unknown", "area_px": 40}


def test_too_short_bounds_each_crack_by_its_own_deepest_pixel():
    mask = np.zeros((40, 60), bool)
    mask[5, 5:9] = True  # 4 px speck: too short for 10 px
    mask[20:27, 10:50] = True  # 7 px thick, 40 px long
    labels, count = bridge_labels(mask, 0)
    short = _too_short(mask, labels, count, DefectOptions())
    assert count == 2 and short.tolist() == [False, True, False]
