import numpy as np
import pytest

from crackal.data.sampling import CropDataset, CropSampler, pad_to
from crackal.errors import CrackalError


def sparse_mask(size=(64, 96)):
    mask = np.zeros(size, np.uint8)
    mask[50:53, 80:90] = 1  # a short crack in one corner
    return mask


def background_only_share(sampler, mask, draws=300):
    hits = []
    for _ in range(draws):
        top, left = sampler.window(mask)
        assert 0 <= top <= mask.shape[0] - sampler.crop_size and 0 <= left <= mask.shape[1] - sampler.crop_size
        hits.append(not mask[top : top + sampler.crop_size, left : left + sampler.crop_size].any())
    return float(np.mean(hits))


def test_share_one_always_holds_a_defect_and_share_zero_avoids_them():
    mask = sparse_mask()
    assert background_only_share(CropSampler(16, "share", positive_share=1.0), mask) == 0.0
    assert background_only_share(CropSampler(16, "share", positive_share=0.0), mask) == 1.0
    half = background_only_share(CropSampler(16, "share", positive_share=0.5, seed=1), mask, 600)
    assert 0.4 < half < 0.6


def test_undersampling_drops_most_background_only_crops():
    mask = np.zeros((64, 96), np.uint8)
    mask[40:42, 40:] = 1  # about a quarter of the 16 px windows touch it
    uniform = background_only_share(CropSampler(16, "random"), mask)
    under = background_only_share(CropSampler(16, "undersample", background_keep=0.1), mask)
    # rejection sampling: background share 0.75 -> 0.75 * 0.1 / (0.75 * 0.1 + 0.25) = 0.23
    assert uniform > 0.65 and under < 0.4


def test_sampler_is_seeded_and_rejects_bad_options():
    mask = sparse_mask()
    a, b = CropSampler(16, "share", seed=3), CropSampler(16, "share", seed=3)
    assert [a.window(mask) for _ in range(20)] == [b.window(mask) for _ in range(20)]
    with pytest.raises(CrackalError, match="unknown crop sampling"):
        CropSampler(16, "oversample")


class OneImage:
    num_classes = 2

    def __init__(self, image, mask):
        self.item, self.pairs = (image, mask), [type("P", (), {"name": "a"})()]

    def __len__(self):
        return 1

    def load(self, index):
        return self.item


def test_crops_keep_image_and_mask_aligned_and_pad_small_images():
    mask = sparse_mask((40, 24))  # narrower than the crop: padded
    mask[:] = 0
    mask[10:30, 5:12] = 1
    image = np.repeat((mask * 255)[..., None], 3, axis=2)
    crops = CropDataset(OneImage(image, mask), CropSampler(32, "share", positive_share=1.0))
    for seed in range(5):
        crops.set_seed(seed)
        sample = crops[0]
        assert sample["image"].shape == (3, 32, 32) and sample["mask"].shape == (32, 32)
        bright = sample["image"][0] > 0  # normalised: 0 means grey 127
        assert (bright == (sample["mask"] == 1)).all() and sample["mask"].any()
    padded, padded_mask = pad_to(image, mask, 32)
    assert padded.shape[:2] == padded_mask.shape == (40, 32)
