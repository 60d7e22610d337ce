"""Inputs a tester found read wrongly or crashing: each is now read right or refused with one
``CrackalError`` that names the file and says what to do."""

from __future__ import annotations

import io
import json
import struct
import time
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from crackal.data.boxes import ImageBoxes, read_coco, read_voc, read_yolo, write_coco, write_voc
from crackal.data.detection import DetectionDataset, find_box_samples
from crackal.data.io import image_size, read_image, read_raw_mask, to_class_mask
from crackal.data.layout import find_pairs, load_pair, validate_pairs
from crackal.errors import CrackalError

H, W = 16, 64
NAMES = ["background", "crack"]


def huge_png(claimed: tuple[int, int] = (100_000, 100_000)) -> bytes:
    """A tiny PNG whose IHDR claims ``claimed`` (width, height) pixels, with a valid CRC."""
    buffer = io.BytesIO()
    Image.new("L", (4, 4)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    struct.pack_into(">II", data, 16, *claimed)  # after the signature (8), the length (4) and b"IHDR" (4)
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def gradient(top: int) -> np.ndarray:
    return np.tile(np.linspace(0, top, W).round().astype(np.uint16), (H, 1))


def assert_gradient(image: np.ndarray) -> None:
    assert image.dtype == np.uint8 and image.shape == (H, W, 3)
    row = image[0, :, 0].astype(int)
    assert (np.diff(row) >= 0).all() and row[0] <= 2 and row[-1] >= 253, row
    assert len(np.unique(row)) > W // 2  # still a gradient, not a few levels


# --- 1. more than 8 bits per sample -------------------------------------------------------


def test_12bit_image_in_16bit_png_is_stretched_not_white(tmp_path):
    path = tmp_path / "cam.png"
    Image.fromarray(gradient(4095)).save(path)  # a 12-bit camera frame
    assert_gradient(read_image(path))


def test_full_range_16bit_tiff_keeps_its_gradient(tmp_path):
    import tifffile

    path = tmp_path / "full.tif"
    tifffile.imwrite(path, gradient(65535))
    image = read_image(path)
    assert_gradient(image)
    assert np.abs(image[0, :, 0].astype(int) - gradient(65535)[0] / 257).max() <= 1  # as if divided by 257


def test_offset_16bit_image_and_hot_pixels(tmp_path):
    frame = (gradient(1000) + 30000).astype(np.uint16)  # a range image with an offset
    frame[0, 0] = 65535  # one hot pixel must not darken the rest
    path = tmp_path / "range.png"
    Image.fromarray(frame).save(path)
    image = read_image(path)
    assert image[1, 0, 0] <= 2 and image[1, -1, 0] >= 253 and len(np.unique(image[1, :, 0])) > W // 2


def test_16bit_colour_png_and_tiff_keep_their_low_bits(tmp_path):
    import cv2
    import tifffile

    rgb = np.stack([gradient(4095), gradient(4095)[:, ::-1], np.full((H, W), 2048, np.uint16)], 2)
    png = tmp_path / "rgb16.png"
    cv2.imwrite(str(png), rgb[:, :, ::-1])
    tif = tmp_path / "rgb16.tif"
    tifffile.imwrite(tif, rgb, photometric="rgb")
    for path in (png, tif):
        image = read_image(path)
        assert image.shape == (H, W, 3) and image[0, 0, 0] <= 2 and image[0, -1, 0] >= 253 and image[0, 0, 1] >= 253
        assert 120 < image[0, 0, 2] < 135, path  # blue: the middle of the shared range


def test_float_and_constant_images(tmp_path):
    import tifffile

    tifffile.imwrite(tmp_path / "depth.tif", np.tile(np.linspace(-2, 2, W, dtype=np.float32), (H, 1)))
    assert_gradient(read_image(tmp_path / "depth.tif"))
    nan = np.tile(np.linspace(0, 1, W, dtype=np.float32), (H, 1))
    nan[:, 0] = np.nan
    tifffile.imwrite(tmp_path / "nan.tif", nan)
    assert read_image(tmp_path / "nan.tif")[0, 0, 0] == 0 and read_image(tmp_path / "nan.tif")[0, -1, 0] >= 253
    Image.fromarray(np.full((H, W), 700, np.uint16)).save(tmp_path / "flat.png")
    assert not read_image(tmp_path / "flat.png").any()


def test_16bit_class_mask_keeps_its_indices(tmp_path):
    mask = np.zeros((H, W), np.uint16)
    mask[:, 10:20], mask[:, 20:30], mask[0, 0] = 1, 2, 255
    path = tmp_path / "m.png"
    Image.fromarray(mask).save(path)
    raw = read_raw_mask(path)
    np.testing.assert_array_equal(raw, mask)
    np.testing.assert_array_equal(to_class_mask(raw, 3, path), mask.astype(np.uint8))
    binary = (mask == 1).astype(np.uint16) * 65535  # a full-range 16-bit binary mask
    Image.fromarray(binary).save(path)
    np.testing.assert_array_equal(to_class_mask(read_raw_mask(path), 2, path), binary > 0)


def test_palette_mask_gives_indices_and_palette_image_gives_colours(tmp_path):
    indices = np.zeros((H, W), np.uint8)
    indices[:, 30:] = 2
    img = Image.fromarray(indices, "P")
    img.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * 759)  # the VOC / labelme palette
    img.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_raw_mask(tmp_path / "p.png"), indices)
    assert to_class_mask(read_raw_mask(tmp_path / "p.png"), 3, tmp_path / "p.png").max() == 2
    assert read_image(tmp_path / "p.png")[0, -1].tolist() == [0, 128, 0]


def test_mask_values_that_are_no_class_index_are_refused(tmp_path):
    import tifffile

    path = tmp_path / "neg.tif"
    tifffile.imwrite(path, np.array([[0, 1], [-1, 2]], np.int16))
    with pytest.raises(CrackalError, match=r"neg\.tif: mask values \[-1\] are not class indices"):
        to_class_mask(read_raw_mask(path), 3, path)  # used to wrap to 255 (= ignore)
    tifffile.imwrite(path, np.array([[0, 1], [1.5, np.nan]], np.float32))
    with pytest.raises(CrackalError, match="are not class indices"):
        to_class_mask(read_raw_mask(path), 3, path)


# --- 2. decompression bombs ---------------------------------------------------------------


def test_huge_declared_png_is_refused_quickly(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(huge_png())
    for reader in (read_image, read_raw_mask, image_size):
        start = time.monotonic()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(CrackalError) as caught:
                reader(path)
        assert time.monotonic() - start < 2
        message = str(caught.value)
        assert message.startswith(f"{path}: image of 100000x100000 = 10,000,000,000 pixels, more than the 89,478,485")
        assert "CRACKAL_MAX_PIXELS" in message and "tiles" in message


def test_pixel_limit_from_the_environment_warning_range_included(tmp_path, monkeypatch):
    saved = Image.MAX_IMAGE_PIXELS
    Image.fromarray(np.zeros((12, 12), np.uint8)).save(tmp_path / "w.png")  # 144 px: Pillow only warns (<= 2x limit)
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(tmp_path / "e.png")  # 400 px: Pillow raises
    monkeypatch.setenv("CRACKAL_MAX_PIXELS", "100")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CrackalError, match=r"w\.png: image of 12x12 = 144 pixels, more than the 100"):
            read_image(tmp_path / "w.png")
        with pytest.raises(CrackalError, match=r"e\.png: image of 20x20 = 400 pixels"):
            read_raw_mask(tmp_path / "e.png")
    assert saved == Image.MAX_IMAGE_PIXELS  # Pillow's own setting is left as it was
    monkeypatch.setenv("CRACKAL_MAX_PIXELS", "400")
    assert read_image(tmp_path / "e.png").shape == (20, 20, 3)
    monkeypatch.setenv("CRACKAL_MAX_PIXELS", "lots")
    with pytest.raises(CrackalError, match="CRACKAL_MAX_PIXELS='lots' is not a positive whole number"):
        read_image(tmp_path / "e.png")


def test_pixel_limit_also_guards_the_tiff_fallback(tmp_path, monkeypatch):
    import tifffile

    path = tmp_path / "big.tif"
    tifffile.imwrite(path, np.zeros((30, 30, 3), np.uint16), photometric="rgb")  # decoded by tifffile
    monkeypatch.setenv("CRACKAL_MAX_PIXELS", "800")
    with pytest.raises(CrackalError, match=r"big\.tif: image of 30x30 = 900 pixels"):
        read_image(path)


# --- 3. / 4. names ------------------------------------------------------------------------


def _pair_files(root, image_names, mask_names):
    for name in image_names:
        (root / "images").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(root / "images" / name)
    for name in mask_names:
        (root / "masks").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((H, W), np.uint8)).save(root / "masks" / name)


def test_duplicate_image_stems_are_refused(tmp_path):
    _pair_files(tmp_path, ["a.png", "a.jpg", "b.png", "c.png", "c.tif"], ["a.png", "b.png", "c.png"])
    with pytest.raises(CrackalError, match=r"images share a name .*: a\.jpg and a\.png; c\.png and c\.tif; rename"):
        find_pairs(tmp_path)


def test_two_masks_for_one_image_are_refused(tmp_path):
    _pair_files(tmp_path, ["x.jpg", "y.jpg"], ["x.png", "x_mask.png", "y.png"])
    with pytest.raises(CrackalError, match=r"more than one mask .*: x\.jpg -> x\.png, x_mask\.png; keep one"):
        find_pairs(tmp_path)


def test_detection_dataset_also_refuses_duplicate_stems(tmp_path):
    _pair_files(tmp_path, ["a.png", "a.jpg"], [])
    write_voc(tmp_path / "annotations" / "a.xml", ImageBoxes([[1, 1, 5, 5]], [1]), NAMES, "a.png", (H, W))
    with pytest.raises(CrackalError, match=r"a\.jpg and a\.png"):
        find_box_samples(tmp_path, NAMES)


def test_masks_without_image_warn_once_and_are_left_out(tmp_path):
    _pair_files(tmp_path, ["a.png"], ["a.png", "ghost.png", "ghost2_mask.png", ".hidden.png"])
    with pytest.warns(UserWarning, match=r"2 mask\(s\) in .*masks have no image .*ignored: ghost\.png, ghost2_mask\.png$"):
        pairs = find_pairs(tmp_path)
    assert [p.name for p in pairs] == ["a"]
    _pair_files(tmp_path / "clean", ["a.png"], ["a_mask.png"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(find_pairs(tmp_path / "clean")) == 1


def test_rotated_image_with_unrotated_mask_says_why(tmp_path):
    _pair_files(tmp_path, [], ["r.png"])
    exif = Image.Exif()
    exif[0x0112] = 6
    (tmp_path / "images").mkdir()
    Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(tmp_path / "images" / "r.jpg", exif=exif.tobytes())
    with pytest.raises(CrackalError, match=r"mask is 64x16 but its image r\.jpg is 16x64 .*EXIF orientation tag"):
        load_pair(find_pairs(tmp_path)[0], 2)


# --- 5. boxes -----------------------------------------------------------------------------


def _coco(tmp_path, bbox):
    data = {"images": [{"id": 1, "file_name": "a.png", "width": W, "height": H}],
            "annotations": [{"id": 7, "image_id": 1, "category_id": 1, "bbox": bbox}],
            "categories": [{"id": 1, "name": "crack"}]}
    (tmp_path / "ann.json").write_text(json.dumps(data))
    return tmp_path / "ann.json"


@pytest.mark.parametrize("bbox, what", [([5, 5, -3, 4], "width -3 is not > 0"), ([5, 5, 3, -4], "height -4 is not > 0"),
                                        ([5, 5, 0, 4], "width 0 is not > 0")])
def test_coco_box_without_area_is_refused(tmp_path, bbox, what):
    with pytest.raises(CrackalError, match=rf"ann\.json: annotation 7 of a\.png, bbox .*: {what}"):
        read_coco(_coco(tmp_path, bbox))


def test_voc_box_with_max_below_min_is_refused(tmp_path):
    write_voc(tmp_path / "a.xml", ImageBoxes([[3, 2, 40, 20]], [1]), NAMES, "a.png", (H, W))
    text = (tmp_path / "a.xml").read_text()
    (tmp_path / "a.xml").write_text(text.replace("<xmax>39</xmax>", "<xmax>1</xmax>"))
    with pytest.raises(CrackalError, match=r"a\.xml: object 1 \(crack\) has xmax < xmin \(xmin 3, ymin 2, xmax 1, ymax 19\)"):
        read_voc(tmp_path / "a.xml", NAMES)
    (tmp_path / "a.xml").write_text(text.replace("<ymax>19</ymax>", "<ymax>0</ymax>"))
    with pytest.raises(CrackalError, match="ymax < ymin"):
        read_voc(tmp_path / "a.xml", NAMES)


@pytest.mark.parametrize("line, what", [("0 0.5 0.5 0 0.2", "no area"), ("0 0.5 0.5 -0.1 0.2", "normalised to 0..1"),
                                        ("0 40 12 10 5", "normalised to 0..1"), ("0 0.5 0.5 0.1 0.1 0.3 0.3", "five numbers"),
                                        ("0.5 0.5 0.5 0.1 0.1", "whole number"), ("0 nan 0.5 0.1 0.1", "finite")])
def test_yolo_bad_line_is_refused_with_its_number(tmp_path, line, what):
    (tmp_path / "a.txt").write_text(f"0 0.5 0.5 0.2 0.2\n{line}\n")
    with pytest.raises(CrackalError, match=rf"a\.txt line 2 .*{what}"):
        read_yolo(tmp_path / "a.txt", (H, W), 2)


def test_boxes_outside_the_image_are_refused_and_overhanging_ones_clipped(tmp_path):
    _pair_files(tmp_path, ["a.png", "b.png"], [])
    outside = ImageBoxes([[1, 1, 5, 5], [W + 10, 2, W + 20, 8]], [1, 1])
    write_coco(tmp_path / "annotations.json", {"a.png": (outside, (H, W))}, NAMES)
    with pytest.raises(CrackalError, match=r"annotations\.json: box 2 of a\.png \[74, 2, 84, 8\] .* lies entirely outside the 64x16 image"):
        find_box_samples(tmp_path, NAMES)
    write_coco(tmp_path / "annotations.json", {"a.png": (ImageBoxes([[-4, 10, 30, 40]], [1]), (H, W))}, NAMES)
    samples = find_box_samples(tmp_path, NAMES)
    np.testing.assert_array_equal(samples[0].boxes.boxes, [[0, 10, 30, H]])
    target = DetectionDataset(samples, augment=True)[0]["target"]["boxes"]
    assert ((target[:, 2:] > target[:, :2]).all()) and target.min() >= 0  # what torchvision asserts


def test_voc_box_outside_its_image_names_the_xml(tmp_path):
    _pair_files(tmp_path, ["a.png"], [])
    write_voc(tmp_path / "annotations" / "a.xml", ImageBoxes([[100, 1, 120, 5]], [1]), NAMES, "a.png", (H, W))
    with pytest.raises(CrackalError, match=r"annotations/a\.xml: box 1 of a\.png .*entirely outside"):
        find_box_samples(tmp_path, NAMES)


def test_coco_unknown_image_or_category_and_duplicate_stems(tmp_path):
    data = {"images": [{"id": 1, "file_name": "a.png"}], "categories": [{"id": 1, "name": "crack"}],
            "annotations": [{"id": 3, "image_id": 2, "category_id": 1, "bbox": [1, 1, 2, 2]}]}
    (tmp_path / "c.json").write_text(json.dumps(data))
    with pytest.raises(CrackalError, match="annotation 3 refers to image_id 2"):
        read_coco(tmp_path / "c.json")
    data["annotations"][0].update(image_id=1, category_id=5)
    (tmp_path / "c.json").write_text(json.dumps(data))
    with pytest.raises(CrackalError, match=r"category_id 5 is not one of the categories \[1\]"):
        read_coco(tmp_path / "c.json")
    data["images"].append({"id": 2, "file_name": "sub/a.jpg"})
    (tmp_path / "c.json").write_text(json.dumps(data))
    with pytest.raises(CrackalError, match="images a.png and sub/a.jpg share a name"):
        read_coco(tmp_path / "c.json")


def test_validate_pairs_reports_every_bad_file_without_traceback(tmp_path):
    _pair_files(tmp_path, ["a.png", "b.png"], ["a.png", "b.png"])
    (tmp_path / "images" / "b.png").write_bytes(huge_png())
    good, problems = validate_pairs(find_pairs(tmp_path), 2, skip_invalid=True)
    assert [p.name for p in good] == ["a"] and "100000x100000" in problems[0]
