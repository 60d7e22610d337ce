import json

import numpy as np
import pytest

from crackal.data.io import read_image, read_raw_mask
from crackal.data.synth import SynthOptions, parse_size, synth_sample, write_synthetic_dataset
from crackal.errors import CrackalError
from crackal.metrics.segmentation import SegmentationEvaluator


def test_sample_shapes_and_crack_share():
    rng = np.random.default_rng(0)
    shares = []
    for _ in range(20):
        image, mask = synth_sample(rng, (96, 128))
        assert image.shape == (96, 128, 3) and image.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 1}
        shares.append(mask.mean())
    shares = np.array(shares)
    assert (shares == 0).any(), "some images have no crack (as on real roads)"
    assert 0.005 < shares[shares > 0].mean() < 0.08, "cracks are a small share of pixels"


def test_crack_widths_vary_between_1_and_6_px():
    from scipy import ndimage

    rng = np.random.default_rng(1)
    widths = []
    for _ in range(30):
        _, mask = synth_sample(rng, (128, 128), SynthOptions(crack_free_fraction=0.0))
        if mask.any():
            widths.append(2 * ndimage.distance_transform_edt(mask).max())
    assert min(widths) <= 3 and max(widths) >= 5 and max(widths) <= 9


def test_seeded():
    a = synth_sample(np.random.default_rng(7), (64, 64))
    b = synth_sample(np.random.default_rng(7), (64, 64))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_extra_classes():
    rng = np.random.default_rng(2)
    seen = set()
    for _ in range(25):
        seen |= set(np.unique(synth_sample(rng, (128, 128), SynthOptions(extra_classes=True))[1]).tolist())
    assert {0, 1, 2, 3, 4} <= seen


def test_darkness_alone_does_not_solve_it():
    """Distractors (shadows, joints, stains, dark aggregate) defeat a darkness threshold."""
    rng = np.random.default_rng(3)
    evaluator = SegmentationEvaluator(["background", "crack"], tolerances=(0,))
    for _ in range(12):
        image, mask = synth_sample(rng, (128, 128))
        darkness = 1 - image.mean(axis=2) / 255.0
        evaluator.update(np.stack([1 - darkness, darkness]), mask)
    assert evaluator.compute()["classes"]["crack"]["tol0"]["ods"]["f1"] < 0.35


def test_dataset_folder(tmp_path):
    root = write_synthetic_dataset(tmp_path / "s", count=3, size="48x64", seed=0)
    assert json.loads((root / "classes.json").read_text()) == ["background", "crack"]
    assert read_image(root / "images" / "synth_000.png").shape == (48, 64, 3)
    assert set(np.unique(read_raw_mask(root / "masks" / "synth_000.png"))) <= {0, 255}


@pytest.mark.parametrize("bad", ["0", "12x", "abc", "10x10"])
def test_bad_size(bad):
    with pytest.raises(CrackalError, match="bad size"):
        parse_size(bad)


def test_small_images_are_not_black():
    """Smooth noise is zero-mean: on an image barely larger than its scale it used to blow up."""

    for size in (32, 48, 64):
        image, _ = synth_sample(np.random.default_rng(0), (size, size), SynthOptions(surface="concrete", distractors=False))
        assert 60 < image.mean() < 230 and image.std() > 2
