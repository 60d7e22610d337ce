"""Class-aware crops: rare classes are seen as often as common ones, at the rate asked for."""

import numpy as np
import pytest

from crackal.data.sampling import ClassLocations, CropDataset, CropSampler, centred_window
from crackal.errors import CrackalError

SIZE, CROP = 64, 32


class Masks:
    """Eight 64 px images with one class-1 blob each and one image with a class-2 blob."""

    num_classes = 3

    def __init__(self):
        self.items = []
        for i in range(9):
            mask = np.zeros((SIZE, SIZE), np.uint8)
            y, x = 5 + 5 * (i % 8), 50 - 4 * (i % 8)
            mask[y : y + 3, x : x + 3] = 2 if i == 8 else 1
            image = np.dstack([mask * 100] * 3).astype(np.uint8)
            self.items.append((image, mask))
        self.pairs = [type("P", (), {"name": f"i{i}"})() for i in range(9)]

    def __len__(self):
        return len(self.items)

    def load(self, index):
        return self.items[index]


def uniform_hit_rate(mask, c):
    """Share of all crop windows (uniform corners) that hold class ``c``."""
    starts = range(SIZE - CROP + 1)
    return np.mean([(mask[t : t + CROP, l : l + CROP] == c).any() for t in starts for l in starts])


def expected_shares(base, p):
    """Each image holds one class, so a crop centred on class c never holds the other one."""
    uniform = {c: np.mean([uniform_hit_rate(m, c) for _, m in base.items]) for c in (1, 2)}
    return {c: p / 2 + (1 - p) * uniform[c] for c in (1, 2)}


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_crop_shares_match_the_expected_share_of_each_class(p):
    base = Masks()
    crops = CropDataset(base, CropSampler(CROP, "random"), class_aware=p)
    crops.set_seed(0)
    crops.reset_counts()
    draws = 400
    for i in range(draws):
        crops[i % len(base)]
    shares = crops.crop_shares()
    expected = expected_shares(base, p)
    assert crops.crops_seen == draws and shares[0] == 1.0  # background is in every crop
    for c in (1, 2):
        assert abs(shares[c] - expected[c]) < 0.08, (p, c, shares[c], expected[c])
    if p == 0.5:
        assert shares[2] > 0.25 > expected_shares(base, 0.0)[2]  # the rare class is seen far more often


def test_locations_subsample_and_centred_windows():
    mask = np.zeros((40, 50), np.uint8)
    mask[10:30, 5:45] = 1
    locations = ClassLocations([mask], 3, per_image=16)
    assert locations.present == [1] and len(locations.pixels[(0, 1)]) == 16
    index, c, flat = locations.draw(np.random.default_rng(0))
    assert (index, c) == (0, 1) and mask.ravel()[flat] == 1
    assert centred_window(39, 49, 40, 50, 32) == (8, 18) and centred_window(20, 25, 40, 50, 16) == (12, 17)


def test_class_aware_must_be_a_probability():
    with pytest.raises(CrackalError, match="class_aware"):
        CropDataset(Masks(), CropSampler(CROP), class_aware=1.5)
