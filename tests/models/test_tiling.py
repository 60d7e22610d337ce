import numpy as np
import pytest
import torch
from torch import nn

from crackal.models import create_model
from crackal.models.predict import predict_image
from crackal.models.segmenter import Segmenter
from crackal.models.tiling import TileBlender, blend_window, tile_boxes, tile_starts


@pytest.mark.parametrize("length,tile,overlap", [(1000, 512, 64), (513, 512, 64), (2000, 256, 32), (300, 512, 0)])
def test_tiles_cover_the_image_with_the_overlap(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0 and min(starts[-1] + tile, length) == length
    for a, b in zip(starts, starts[1:]):
        assert a + tile - b >= overlap


def test_blending_constant_tiles_gives_the_constant():
    blender = TileBlender(2, 100, 150)
    for box in tile_boxes(100, 150, 64, 16):
        t, l, b, r = box
        blender.add(np.full((2, b - t, r - l), 0.25, np.float32), box, 16)
    np.testing.assert_allclose(blender.result(), 0.25, rtol=1e-6)
    assert blend_window(10, 10, 4).min() > 0


def pointwise_model() -> Segmenter:
    """A model without spatial context: tiling must not change its output at all."""
    torch.manual_seed(0)
    trunk = nn.Sequential(nn.Conv2d(3, 4, 1), nn.ReLU())
    return Segmenter(trunk, nn.Conv2d(4, 1, 1), dropout=0.0, stride=1)


def test_tiled_prediction_equals_whole_image_prediction():
    image = np.random.default_rng(0).integers(0, 255, (150, 230, 3), dtype=np.uint8)
    model = pointwise_model()
    whole = predict_image(model, image, tile_size=1024)
    tiled = predict_image(model, image, tile_size=64, overlap=16)
    assert whole.shape == (2, 150, 230)
    np.testing.assert_allclose(tiled, whole, atol=1e-5)


def test_tiling_a_unet_stays_close_to_whole_image():
    image = np.random.default_rng(1).integers(0, 255, (96, 160, 3), dtype=np.uint8)
    model = create_model("unet", 2, base_channels=8, depth=3).eval()
    whole = predict_image(model, image, tile_size=512)
    tiled = predict_image(model, image, tile_size=64, overlap=32)
    assert np.abs(tiled - whole).mean() < 0.02


def test_flip_tta_is_flip_invariant():
    image = np.random.default_rng(2).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    model = create_model("unet", 2, base_channels=8, depth=3).eval()
    a = predict_image(model, image, tta=True)
    b = predict_image(model, image[:, ::-1].copy(), tta=True)[:, :, ::-1]
    np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(a.sum(0), 1.0, atol=1e-5)
