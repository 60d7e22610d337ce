"""Bi-temporal folders, tiles and the 1 % / 3 % tile-label rule."""

import numpy as np
import pytest

from crackal.data.bitemporal import (
    CHANGED,
    IGNORED,
    UNCHANGED,
    balanced_subset,
    cut_tiles,
    find_bitemporal,
    load_bitemporal,
    tile_labels,
    write_bitemporal,
)
from crackal.errors import CrackalError


def _masks_with(changed_pixels, size=100):
    masks = np.zeros((len(changed_pixels), size, size), np.uint8)
    for mask, n in zip(masks, changed_pixels):
        mask.reshape(-1)[:n] = 1
    return masks


@pytest.mark.parametrize("pixels,label", [
    (0, UNCHANGED), (99, UNCHANGED),       # under 1 %: unchanged
    (100, IGNORED), (200, IGNORED),        # exactly 1 % and in between: ignored
    (300, IGNORED),                        # exactly 3 % is not "over 3 %"
    (301, CHANGED), (10_000, CHANGED),
])
def test_tile_label_boundaries(pixels, label):
    assert tile_labels(_masks_with([pixels]))[0] == label


def test_tile_labels_take_other_thresholds_and_check_them():
    assert tile_labels(_masks_with([150]), low=0.02, high=0.05)[0] == UNCHANGED
    with pytest.raises(CrackalError, match="low <= high"):
        tile_labels(_masks_with([0]), low=0.05, high=0.01)


def test_folders_round_trip_and_tiles(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(2):
        a, b = rng.integers(0, 255, (70, 130, 3), dtype=np.uint8), rng.integers(0, 255, (70, 130, 3), dtype=np.uint8)
        mask = np.zeros((70, 130), np.uint8)
        mask[:32, :8] = i  # 25 % of the top-left tile changed in pair 1
        write_bitemporal(tmp_path, f"p{i}", a, b, mask)
    pairs = find_bitemporal(tmp_path)
    assert [p.name for p in pairs] == ["p0", "p1"]
    sample = load_bitemporal(pairs[1])
    assert sample["image"].shape == (70, 130, 6) and set(np.unique(sample["mask"])) == {0, 1}
    tiles = cut_tiles([load_bitemporal(p) for p in pairs], 32)
    assert len(tiles) == 2 * 2 * 4 and tiles.images.shape == (16, 32, 32, 6)  # right/bottom remainder dropped
    assert tiles.names[8] == "p1_r0_c0" and tiles.labels[8] == CHANGED and (tiles.labels == CHANGED).sum() == 1
    balanced = balanced_subset(tiles, seed=0)
    assert sorted(balanced.labels.tolist()) == [UNCHANGED, CHANGED]
    with pytest.raises(CrackalError, match="balanced set of 2"):
        balanced_subset(tiles, per_class=2)


def test_missing_files_are_named(tmp_path):
    img = np.zeros((8, 8, 3), np.uint8)
    write_bitemporal(tmp_path, "x", img, img, np.zeros((8, 8), np.uint8))
    (tmp_path / "B" / "x.png").unlink()
    with pytest.raises(CrackalError, match="x: in A/ but not in B/"):
        find_bitemporal(tmp_path)
    with pytest.raises(CrackalError, match="needs folders A/"):
        find_bitemporal(tmp_path / "nowhere")


def test_size_mismatch_is_an_error(tmp_path):
    write_bitemporal(tmp_path, "x", np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8), np.zeros((8, 8), np.uint8))
    with pytest.raises(CrackalError, match="one size"):
        load_bitemporal(find_bitemporal(tmp_path)[0])
