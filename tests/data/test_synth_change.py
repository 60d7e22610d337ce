"""Synthetic bi-temporal pairs: what changes is in the mask, what does not is not."""

import numpy as np
from scipy import ndimage

from crackal.data.bitemporal import find_bitemporal, load_bitemporal
from crackal.data.synth_change import ChangeOptions, synth_change_pair, write_change_dataset


def _pairs(options, count=12, seed=0):
    rng = np.random.default_rng(seed)
    return [synth_change_pair(rng, (96, 96), options) for _ in range(count)]


def test_no_change_gives_an_empty_mask_but_different_photos():
    for pair in _pairs(ChangeOptions(change_probability=0.0)):
        assert not pair["mask"].any() and set(pair["fates"]) <= {"static"}
        # illumination change and misregistration: the two photos differ everywhere, not only at cracks
        diff = np.abs(pair["image_a"].astype(int) - pair["image_b"].astype(int)).mean(2)
        assert (diff > 3).mean() > 0.3


def test_grown_and_new_cracks_are_change_and_old_cracks_are_not():
    pairs = _pairs(ChangeOptions(change_probability=1.0, fate_weights=(1, 1, 0), max_cracks=3), count=16)
    assert any(p["mask"].any() for p in pairs)
    for pair in pairs:
        shifted_a = ndimage.binary_dilation(pair["crack_a"], iterations=2)  # B is misregistered by <= 1.5 px
        new = pair["crack_b"] & ~shifted_a
        assert pair["mask"][new].all()  # every clearly new crack pixel is change
        static = pair["crack_a"] & pair["crack_b"] & ~ndimage.binary_dilation(pair["mask"] > 0, iterations=3)
        assert not (pair["mask"][static]).any()


def test_sealed_cracks_are_change_and_darker_in_the_second_photo():
    pairs = [p for p in _pairs(ChangeOptions(change_probability=1.0, fate_weights=(0, 0, 1), max_cracks=1), count=12) if p["mask"].any()]
    assert pairs
    for pair in pairs:
        sealed = pair["mask"] > 0
        assert pair["crack_a"][sealed].any() and sealed.sum() > 2 * (pair["crack_a"] & sealed).sum()  # a band wider than the crack
        grey_b = pair["image_b"].mean(2)
        assert grey_b[sealed].mean() < grey_b[~sealed].mean() - 30


def test_written_dataset_is_seeded_and_readable(tmp_path):
    write_change_dataset(tmp_path / "a", count=3, size=64, seed=5)
    write_change_dataset(tmp_path / "b", count=3, size=64, seed=5)
    pairs = find_bitemporal(tmp_path / "a")
    assert len(pairs) == 3
    for pa, pb in zip(pairs, find_bitemporal(tmp_path / "b")):
        x, y = load_bitemporal(pa), load_bitemporal(pb)
        assert np.array_equal(x["image"], y["image"]) and np.array_equal(x["mask"], y["mask"])
