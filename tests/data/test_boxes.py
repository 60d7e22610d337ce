import json

import numpy as np
import pytest

from crackal.data.boxes import (
    ImageBoxes,
    boxes_from_mask,
    read_coco,
    read_voc,
    read_yolo,
    write_coco,
    write_voc,
    write_yolo,
)
from crackal.data.detection import DetectionDataset, find_box_samples
from crackal.data.io import write_png
from crackal.errors import CrackalError

NAMES = ["background", "crack", "pothole"]


def example() -> ImageBoxes:
    return ImageBoxes([[3, 2, 40, 20], [10, 30, 25, 50]], [1, 2])


def test_voc_round_trip(tmp_path):
    write_voc(tmp_path / "a.xml", example(), NAMES, "a.jpg", (60, 80))
    back = read_voc(tmp_path / "a.xml", NAMES)
    np.testing.assert_array_equal(back.boxes, example().boxes)
    np.testing.assert_array_equal(back.labels, example().labels)
    assert "<xmax>39</xmax>" in (tmp_path / "a.xml").read_text()  # VOC corners are inclusive pixels


def test_yolo_round_trip(tmp_path):
    write_yolo(tmp_path / "a.txt", example(), (60, 80))
    first = (tmp_path / "a.txt").read_text().splitlines()[0].split()
    assert first[0] == "0" and float(first[1]) == pytest.approx(21.5 / 80)
    back = read_yolo(tmp_path / "a.txt", (60, 80), len(NAMES))
    np.testing.assert_allclose(back.boxes, example().boxes, atol=1e-3)
    np.testing.assert_array_equal(back.labels, example().labels)


def test_coco_round_trip(tmp_path):
    write_coco(tmp_path / "ann.json", {"a.jpg": (example(), (60, 80)), "b.jpg": (ImageBoxes(), (60, 80))}, NAMES)
    boxes, names = read_coco(tmp_path / "ann.json")
    assert names == NAMES
    np.testing.assert_allclose(boxes["a"].boxes, example().boxes)
    np.testing.assert_array_equal(boxes["a"].labels, [1, 2])
    assert len(boxes["b"]) == 0
    assert json.loads((tmp_path / "ann.json").read_text())["annotations"][0]["bbox"] == [3, 2, 37, 18]


def test_unknown_class_and_bad_file_are_clear(tmp_path):
    write_voc(tmp_path / "a.xml", example(), NAMES, "a.jpg", (60, 80))
    with pytest.raises(CrackalError, match="unknown class 'pothole'"):
        read_voc(tmp_path / "a.xml", ["background", "crack"])
    (tmp_path / "bad.xml").write_text("<annotation><object>")
    with pytest.raises(CrackalError, match="cannot read VOC"):
        read_voc(tmp_path / "bad.xml", NAMES)
    (tmp_path / "bad.txt").write_text("0 0.5 0.5\n")
    with pytest.raises(CrackalError, match="YOLO"):
        read_yolo(tmp_path / "bad.txt", (10, 10), 2)


def branching_crack() -> np.ndarray:
    mask = np.zeros((100, 120), np.uint8)
    mask[50, 10:90] = 1  # trunk
    for i in range(25):  # a branch leaving the trunk diagonally
        mask[50 - i, 40 + i] = 1
    mask[50, 55:58] = 0  # a small gap in the trunk
    return mask


def test_branching_crack_gives_one_box():
    boxes = boxes_from_mask(branching_crack(), 2, merge_distance=8, min_pixels=5)
    assert len(boxes) == 1
    np.testing.assert_array_equal(boxes.boxes[0], [10, 26, 90, 51])
    assert len(boxes_from_mask(branching_crack(), 2, merge_distance=0, min_pixels=1)) == 2  # the gap splits it


def test_distant_cracks_give_two_boxes_and_small_specks_are_dropped():
    mask = np.zeros((100, 100), np.uint8)
    mask[10, 5:40] = 1
    mask[80, 50:95] = 1
    mask[50, 50] = 1  # a speck
    boxes = boxes_from_mask(mask, 2, merge_distance=8, min_pixels=5)
    assert len(boxes) == 2
    assert sorted(boxes.boxes[:, 1].tolist()) == [10, 80]


def test_boxes_per_class_and_ignore_value():
    mask = np.zeros((40, 40), np.uint8)
    mask[5:10, 5:10] = 1
    mask[5:10, 12:18] = 2  # touches within merge distance, but another class
    mask[30:35, 30:35] = 255
    boxes = boxes_from_mask(mask, 3, merge_distance=8, min_pixels=1)
    assert sorted(boxes.labels.tolist()) == [1, 2]


def test_dataset_from_masks_and_from_voc(tmp_path):
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        write_png(tmp_path / "images" / f"{name}.png", rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
        mask = np.zeros((40, 60), np.uint8)
        mask[10, 5:30] = 255
        write_png(tmp_path / "masks" / f"{name}.png", mask)
    samples = find_box_samples(tmp_path, ["background", "crack"], min_pixels=5)
    assert [len(s.boxes) for s in samples] == [1, 1] and samples[0].mask is not None
    write_voc(tmp_path / "annotations" / "a.xml", ImageBoxes([[1, 1, 20, 20]], [1]), ["background", "crack"], "a.png", (40, 60))
    samples = find_box_samples(tmp_path, ["background", "crack"])
    assert [len(s.boxes) for s in samples] == [1, 0]  # b has no file: no boxes
    dataset = DetectionDataset(samples, augment=True)
    dataset.set_seed(3)
    item = dataset[0]
    assert item["image"].shape == (3, 40, 60) and float(item["image"].max()) <= 1.0
    box = item["target"]["boxes"][0].tolist()
    assert box in ([1, 1, 20, 20], [40, 1, 59, 20], [1, 20, 20, 39], [40, 20, 59, 39])  # flipped with the image
    with pytest.raises(CrackalError, match="neither boxes"):
        find_box_samples(tmp_path / "images", ["background", "crack"])
