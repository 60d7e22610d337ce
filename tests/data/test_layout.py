import numpy as np
import pytest
from scipy.io import savemat

from crackal.data.io import read_image, read_raw_mask, to_class_mask
from crackal.data.layout import find_pairs, load_pair, read_class_colors, read_class_names, validate_pairs
from crackal.errors import CrackalError
from tests.conftest import make_dataset, write_image


def test_folder_layout_pairs_and_loads(tiny_dataset):
    pairs = find_pairs(tiny_dataset)
    assert [p.name for p in pairs] == ["img0", "img1", "img2", "img3"]
    image, mask = load_pair(pairs[0], num_classes=2)
    assert image.shape == (32, 48, 3) and image.dtype == np.uint8
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}


def test_zero_one_and_zero_255_masks_agree(tmp_path):
    a = make_dataset(tmp_path / "a", count=1, mask_scale=255)
    b = make_dataset(tmp_path / "b", count=1, mask_scale=1)
    _, mask_a = load_pair(find_pairs(a)[0], 2)
    _, mask_b = load_pair(find_pairs(b)[0], 2)
    np.testing.assert_array_equal(mask_a, mask_b)


def test_explicit_folders_and_suffixed_mask_names(tmp_path):
    write_image(tmp_path / "photos" / "road.jpg", np.full((16, 16, 3), 120, np.uint8))
    write_image(tmp_path / "labels" / "road_mask.png", np.zeros((16, 16), np.uint8))
    pairs = find_pairs(tmp_path / "photos", tmp_path / "labels")
    assert pairs[0].mask.name == "road_mask.png"


def test_grey_and_tiff_images_become_rgb(tmp_path):
    grey = write_image(tmp_path / "g.tif", np.arange(16 * 16, dtype=np.uint8).reshape(16, 16))
    image = read_image(grey)
    assert image.shape == (16, 16, 3)
    np.testing.assert_array_equal(image[..., 0], image[..., 2])


def test_sixteen_bit_tiff_is_scaled(tmp_path):
    import tifffile

    path = tmp_path / "deep.tif"
    tifffile.imwrite(path, (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000))
    image = read_image(path)
    assert image.dtype == np.uint8 and image.max() == 255


def test_crackforest_mat_ground_truth(tmp_path):
    seg = np.ones((6, 8), np.uint16)
    seg[1, :] = 2  # crack
    seg[3, :] = 3  # non-crack island
    seg[4, :] = 4  # extra crack strokes
    gt = np.zeros((1, 1), dtype=[("Segmentation", "O"), ("Boundaries", "O")])
    gt[0, 0]["Segmentation"] = seg
    gt[0, 0]["Boundaries"] = np.zeros_like(seg)
    (tmp_path / "groundTruth").mkdir()
    savemat(tmp_path / "groundTruth" / "001.mat", {"groundTruth": gt})
    write_image(tmp_path / "image" / "001.jpg", np.full((6, 8, 3), 100, np.uint8))
    pairs = find_pairs(tmp_path)  # CrackForest's own layout: image/ + groundTruth/
    _, mask = load_pair(pairs[0], 2)
    assert mask[:, 0].tolist() == [0, 1, 0, 0, 1, 0]


def test_class_names_file(tmp_path):
    (tmp_path / "classes.json").write_text('["background", "crack", "pothole"]')
    assert read_class_names(tmp_path) == ["background", "crack", "pothole"]
    assert read_class_colors(tmp_path) is None
    (tmp_path / "classes.json").write_text('{"bad": 1}')
    with pytest.raises(CrackalError, match="at least two classes"):
        read_class_names(tmp_path)
    (tmp_path / "classes.json").write_text('[{"name": "background"}, {"name": "crack", "color": [300, 0, 0]}]')
    with pytest.raises(CrackalError, match="at least two classes"):
        read_class_names(tmp_path)


def test_class_names_with_colours(tmp_path):
    (tmp_path / "classes.json").write_text(
        '[{"name": "background"}, {"name": "crack", "color": [255, 0, 0]}, {"name": "patch", "color": [0, 0, 255]}]'
    )
    assert read_class_names(tmp_path) == ["background", "crack", "patch"]
    assert read_class_colors(tmp_path) == [[0, 0, 0], [255, 0, 0], [0, 0, 255]]


def test_paveseg_layout_as_downloaded(tmp_path):
    write_image(tmp_path / "images" / "000001.jpg", np.full((4, 6, 3), 100, np.uint8))
    grey = np.zeros((4, 6), np.uint8)
    grey[0, :3], grey[3, 5] = 30, 180  # crack, utility cover
    write_image(tmp_path / "masks_gray_original" / "000001_mask.png", np.repeat(grey[..., None], 3, axis=2))
    names = read_class_names(tmp_path)
    assert names[:3] == ["background", "crack", "pothole"] and names[6] == "utility_cover" and len(names) == 8
    _, mask = load_pair(find_pairs(tmp_path)[0], len(names))
    assert mask[0, :4].tolist() == [1, 1, 1, 0] and mask[3, 5] == 6
    grey[1, 1] = 31
    write_image(tmp_path / "masks_gray_original" / "000001_mask.png", grey)
    with pytest.raises(CrackalError, match="multiples of 30"):
        load_pair(find_pairs(tmp_path)[0], len(names))


# --- bad input: one clear error naming the file ---------------------------------------


def test_missing_folder(tmp_path):
    with pytest.raises(CrackalError, match="not found"):
        find_pairs(tmp_path / "nope")


def test_folder_without_layout(tmp_path):
    (tmp_path / "stuff").mkdir()
    with pytest.raises(CrackalError, match="no images/ and masks/"):
        find_pairs(tmp_path)


def test_empty_image_folder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(CrackalError, match="no images"):
        find_pairs(tmp_path)


def test_missing_mask_names_the_image(tiny_dataset):
    (tiny_dataset / "masks" / "img2.png").unlink()
    with pytest.raises(CrackalError, match="img2.png.*--skip-invalid"):
        find_pairs(tiny_dataset)
    assert len(find_pairs(tiny_dataset, allow_missing=True)) == 3


def test_truncated_image_is_reported(tiny_dataset):
    path = tiny_dataset / "images" / "img1.png"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CrackalError, match=r"img1\.png.*corrupt or truncated"):
        validate_pairs(find_pairs(tiny_dataset), 2)


def test_truncated_jpeg_is_reported(tmp_path):
    path = write_image(tmp_path / "x.jpg", np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-300])
    with pytest.raises(CrackalError, match="x.jpg"):
        read_image(path)


def test_garbage_file_is_reported(tmp_path):
    path = tmp_path / "junk.png"
    path.write_bytes(b"not an image at all")
    with pytest.raises(CrackalError, match="junk.png"):
        read_image(path)


def test_mask_size_mismatch_names_both_sizes(tiny_dataset):
    write_image(tiny_dataset / "masks" / "img0.png", np.zeros((10, 10), np.uint8))
    with pytest.raises(CrackalError, match=r"img0\.png: mask is 10x10 but its image img0\.png is 48x32"):
        validate_pairs(find_pairs(tiny_dataset), 2)


def test_unexpected_binary_mask_values(tiny_dataset):
    mask = np.zeros((32, 48), np.uint8)
    mask[3, 3], mask[4, 4] = 128, 255
    path = write_image(tiny_dataset / "masks" / "img3.png", mask)
    with pytest.raises(CrackalError, match=r"unexpected mask values \[0, 128, 255\].*--binarize"):
        validate_pairs(find_pairs(tiny_dataset), 2)
    binarized = to_class_mask(read_raw_mask(path), 2, path, binarize=True)
    assert binarized[3, 3] == 1 and binarized[4, 4] == 1 and binarized.sum() == 2


def test_multiclass_value_out_of_range(tmp_path):
    path = write_image(tmp_path / "m.png", np.array([[0, 1], [2, 7]], np.uint8))
    with pytest.raises(CrackalError, match=r"\[7\] exceed the 3 classes"):
        to_class_mask(read_raw_mask(path), 3, path)
    ignore = write_image(tmp_path / "i.png", np.array([[0, 1], [2, 255]], np.uint8))
    assert to_class_mask(read_raw_mask(ignore), 3, ignore)[1, 1] == 255


def test_colour_mask_rejected(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[0, 0] = (255, 0, 0)
    path = write_image(tmp_path / "c.png", rgb)
    with pytest.raises(CrackalError, match="colour mask"):
        read_raw_mask(path)


def test_skip_invalid_keeps_the_good_and_lists_the_bad(tiny_dataset):
    (tiny_dataset / "images" / "img1.png").write_bytes(b"broken")
    write_image(tiny_dataset / "masks" / "img2.png", np.zeros((5, 5), np.uint8))
    with pytest.raises(CrackalError, match="2 bad files"):
        validate_pairs(find_pairs(tiny_dataset), 2)
    good, problems = validate_pairs(find_pairs(tiny_dataset), 2, skip_invalid=True)
    assert [p.name for p in good] == ["img0", "img3"]
    assert len(problems) == 2 and "img1.png" in problems[0] and "img2.png" in problems[1]
