"""COCO instances files: class masks and boxes out (checked with pycocotools' own reader), class
masks in from polygons, uncompressed and compressed RLE, and the mistakes a user can make."""

import json
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_utils
import pytest
from PIL import Image
from pycocotools.coco import COCO
from scipy import ndimage

from crackal.data.boxes import ImageBoxes, read_coco
from crackal.errors import CrackalError
from crackal.interop.coco import (
    _string_counts,
    coco_dataset,
    find_coco_file,
    iter_masks,
    read_coco_file,
    read_masks,
    write_class_masks,
    write_coco_json,
)

NAMES = ["background", "crack", "pothole"]


def known_mask() -> np.ndarray:
    """Three crack components (one diagonal, 8-connected only), one pothole, ignored pixels."""
    mask = np.zeros((12, 16), np.uint8)
    mask[1, 1:6] = 1  # a horizontal crack
    mask[[4, 5, 6], [2, 3, 4]] = 1  # a diagonal crack: one component with 8-connectivity
    mask[11, 15] = 1  # the last pixel (no trailing run in the RLE)
    mask[6:10, 9:14] = 2  # a pothole
    mask[0, 10:12] = 255  # ignored: no instance
    return mask


def write_image(path: Path, height: int, width: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width, 3), 120, np.uint8)).save(path)
    return path


def test_masks_to_coco_read_back_by_pycocotools(tmp_path):
    mask = known_mask()
    boxes = ImageBoxes([[2, 3, 7, 9], [0.5, 1, 4, 2.5]], [1, 2])
    data = coco_dataset([("a.png", mask.shape, mask), ("b.jpg", (20, 30), boxes)], NAMES, "test")
    path = write_coco_json(tmp_path / "annotations.json", data)
    coco = COCO(str(path))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["crack", "pothole"]
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    assert [a["category_id"] for a in anns] == [1, 1, 1, 2]
    components = []
    for cls in (1, 2):
        labels, count = ndimage.label(mask == cls, np.ones((3, 3), int))
        components += [labels == i for i in range(1, count + 1)]
    for ann, component in zip(anns, components):
        assert (coco.annToMask(ann) == component).all()
        rows, cols = np.nonzero(component)
        assert ann["bbox"] == [cols.min(), rows.min(), cols.max() - cols.min() + 1, rows.max() - rows.min() + 1]
        assert ann["area"] == component.sum() and ann["iscrowd"] == 0
        assert ann["segmentation"]["counts"] == mask_utils.encode(np.asfortranarray(component.astype(np.uint8)))["counts"].decode()
    assert [a["bbox"] for a in anns[:3]] == [[1, 1, 5, 1], [2, 4, 3, 3], [15, 11, 1, 1]]
    box_anns = coco.loadAnns(coco.getAnnIds(imgIds=[2]))
    assert [(a["bbox"], a["area"], a["segmentation"]) for a in box_anns] == [([2, 3, 5, 6], 30, []), ([0.5, 1, 3.5, 1.5], 5.25, [])]
    assert len({a["id"] for a in coco.dataset["annotations"]}) == 6
    # crackal's own box reader agrees (category id = class index)
    read, names = read_coco(path)
    assert names == NAMES and read["b"].boxes.tolist() == [[2, 3, 7, 9], [0.5, 1, 4, 2.5]]
    assert read["a"].labels.tolist() == [1, 1, 1, 2]


def test_round_trip_through_the_reader(tmp_path):
    mask = known_mask()
    path = write_coco_json(tmp_path / "c.json", coco_dataset([("a.png", mask.shape, mask)], NAMES))
    masks, names = read_masks(path)
    assert names == NAMES
    assert (masks["a.png"] == np.where(mask == 255, 0, mask)).all()


def coco_file(tmp_path: Path, annotations: list[dict], categories=None, images=None) -> Path:
    data = {"images": images or [{"id": 7, "file_name": "sub/x.png", "height": 4, "width": 5}],
            "annotations": [{"id": i, "image_id": 7, "category_id": 1, **a} for i, a in enumerate(annotations, start=1)],
            "categories": categories or [{"id": 1, "name": "crack"}]}
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data))
    return path


def test_polygons_and_rle_give_the_hand_computed_pixels(tmp_path):
    square = [[0, 0, 2, 0, 2, 2, 0, 2]]  # pixel edges: covers rows 0-1, columns 0-1
    path = coco_file(tmp_path, [
        {"segmentation": square},
        {"segmentation": {"counts": [13, 3, 4], "size": [4, 5]}},  # column-major: column 3, rows 1-3
        {"segmentation": {"counts": "92203", "size": [4, 5]}, "category_id": 2},  # rows 1-2, columns 2-3, painted last
        {"segmentation": [[4, 0, 5, 0, 5, 1, 4, 1], [4, 3, 5, 3, 5, 4, 4, 4]]},  # two polygons: one pixel each
    ], categories=[{"id": 1, "name": "crack"}, {"id": 2, "name": "pothole"}])
    masks, names = read_masks(path)
    assert names == NAMES
    expected = np.array([[1, 1, 0, 0, 1],
                         [1, 1, 2, 2, 0],
                         [0, 0, 2, 2, 0],
                         [0, 0, 0, 1, 1]], np.uint8)
    got = masks["sub/x.png"]
    assert got.dtype == np.uint8
    assert (got == expected).all()
    assert _string_counts("92203") == [9, 2, 2, 2, 5]


def test_categories_are_matched_by_name_and_later_annotations_win(tmp_path):
    path = coco_file(tmp_path, [{"segmentation": [[0, 0, 5, 0, 5, 4, 0, 4]]},
                                {"segmentation": [[0, 0, 1, 0, 1, 1, 0, 1]], "category_id": 9}],
                     categories=[{"id": 9, "name": "crack"}, {"id": 1, "name": "patch"}])
    masks, names = read_masks(path, ["background", "crack", "pothole", "patch"])
    assert names == ["background", "crack", "pothole", "patch"]
    assert masks["sub/x.png"][0, 0] == 1 and (masks["sub/x.png"].ravel()[1:] == 3).all()
    assert read_coco_file(path).class_names() == ["background", "patch", "crack"]  # category-id order


@pytest.mark.parametrize("annotations,categories,message", [
    ([{"segmentation": [[0, 0, 1, 0, 1, 1]]}], [{"id": 1, "name": "spall"}], r"categories 'spall' \(id 1\) are not among the classes"),
    ([{"segmentation": [[0, 0, 1, 0, 1, 1]], "image_id": 3}], None, "refers to image_id 3, which is not in 'images'"),
    ([{"segmentation": [[0, 0, 1, 0, 1, 1]], "category_id": 4}], None, "category_id 4, which is not in 'categories'"),
    ([{"bbox": [0, 0, 2, 2]}], None, "has no segmentation"),
    ([{"segmentation": [[0, 0, 1, 1]]}], None, "at least three points"),
    ([{"segmentation": {"counts": [1, 2], "size": [4, 5]}}], None, "RLE counts are corrupt"),
    ([{"segmentation": {"counts": "9220", "size": [4, 5]}}], None, "RLE counts are corrupt"),
    ([{"segmentation": {"counts": "92203", "size": [5, 4]}}], None, r"RLE size \[5, 4\] differs"),
])
def test_mistakes_in_the_file(tmp_path, annotations, categories, message):
    path = coco_file(tmp_path, annotations, categories)
    with pytest.raises(CrackalError, match=message):
        read_masks(path, ["background", "crack"])


@pytest.mark.parametrize("content,message", [
    ("[1, 2]", "is not a COCO instances file"),
    ("{not json", "not JSON"),
    ('{"images": [{"id": 1}], "categories": []}', "KeyError: 'file_name'"),
    ('{"images": [{"id": 1, "file_name": "a.png", "width": -3}], "categories": []}', "whole numbers > 0"),
])
def test_not_coco(tmp_path, content, message):
    (tmp_path / "bad.json").write_text(content)
    with pytest.raises(CrackalError, match=message):
        read_coco_file(tmp_path / "bad.json")


def test_sizes_are_checked_against_the_image_files(tmp_path):
    path = coco_file(tmp_path, [{"segmentation": [[0, 0, 2, 0, 2, 2, 0, 2]]}])
    write_image(tmp_path / "images" / "x.png", 4, 6)
    with pytest.raises(CrackalError, match=r"image 7 \(sub/x.png\) is 5x4 \(width x height\) in the file, but .* is 6x4"):
        list(iter_masks(read_coco_file(path), None, tmp_path / "images"))
    write_image(tmp_path / "images" / "x.png", 4, 5)
    [(image, mask)] = iter_masks(read_coco_file(path), None, tmp_path / "images")
    assert mask.shape == (4, 5) and mask.sum() == 4
    with pytest.raises(CrackalError, match="does not exist"):
        list(iter_masks(read_coco_file(path), None, tmp_path))


def test_a_coco_dataset_becomes_mask_pngs(tmp_path):
    data = tmp_path / "data"
    for name in ("a.png", "b.png"):
        write_image(data / "images" / name, 8, 10)
    mask = np.zeros((8, 10), np.uint8)
    mask[2, 1:9] = 1
    (data / "annotations.json").write_text(json.dumps(coco_dataset([("a.png", (8, 10), mask), ("b.png", (8, 10), mask * 0)],
                                                                   ["background", "crack"])))
    assert find_coco_file(data) == data / "annotations.json"
    images, names = write_class_masks(find_coco_file(data), data, tmp_path / "masks")
    assert images == data / "images" and names == ["background", "crack"]
    assert (np.asarray(Image.open(tmp_path / "masks" / "a.png")) == mask * 255).all()
    assert not np.asarray(Image.open(tmp_path / "masks" / "b.png")).any()
    write_image(data / "images" / "c.png", 8, 10)
    with pytest.raises(CrackalError, match="does not list c.png"):
        write_class_masks(data / "annotations.json", data, tmp_path / "masks")
    write_class_masks(data / "annotations.json", data, tmp_path / "masks", skip_invalid=True)
    assert sorted(p.name for p in (tmp_path / "masks").iterdir()) == ["a.png", "b.png"]
    (data / "masks").mkdir()
    assert find_coco_file(data) is None  # a mask layout: the masks are the labels
