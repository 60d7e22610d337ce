import numpy as np
import torch

from crackal.data.dataset import SegmentationDataset
from crackal.data.layout import find_pairs
from crackal.data.transforms import train_transform


def test_sample_dict(tiny_dataset):
    ds = SegmentationDataset(find_pairs(tiny_dataset), 2)
    sample = ds[0]
    assert sample["image"].shape == (3, 32, 48) and sample["image"].dtype == torch.float32
    assert sample["mask"].shape == (32, 48) and sample["mask"].dtype == torch.int64
    assert sample["name"] == "img0"
    assert ds.class_pixel_counts().tolist() == [4 * (32 * 48 - 40), 4 * 40]


def test_training_crops_keep_image_and_mask_aligned(tiny_dataset):
    transform = train_transform(64)  # larger than the 32x48 images: padded, then cropped
    transform.set_random_seed(0)
    ds = SegmentationDataset(find_pairs(tiny_dataset), 2, transform=transform)
    for i in range(4):
        sample = ds[i]
        assert sample["image"].shape == (3, 64, 64) and sample["mask"].shape == (64, 64)
        crack = sample["mask"] == 1
        brightness = sample["image"].mean(0)
        assert crack.any()
        # the crack pixels were made darker than the rest, whatever the augmentation did
        assert brightness[crack].mean() < brightness[~crack].mean()


def test_augmentation_is_seeded(tiny_dataset):
    outs = []
    for _ in range(2):
        transform = train_transform(32)
        transform.set_random_seed(11)
        ds = SegmentationDataset(find_pairs(tiny_dataset), 2, transform=transform)
        outs.append(np.stack([ds[i]["mask"].numpy() for i in range(4)]))
    np.testing.assert_array_equal(outs[0], outs[1])
