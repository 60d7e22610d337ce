"""The two-scale model: shapes, gradients through both encoders, the context taken from the
image around each tile."""

import numpy as np
import pytest
import torch

from crackal.data.context import context_bounds, context_window
from crackal.data.transforms import to_tensor
from crackal.errors import CrackalError
from crackal.models import create_model
from crackal.models.context import self_context
from crackal.models.predict import predict_image, tile_input
from tests.models.test_models import ModelSuite


def small(context=2, classes=4):
    torch.manual_seed(0)
    return create_model("unet", classes, base_channels=4, depth=2, context=context)


@pytest.mark.parametrize("context", [2, 4])
def test_output_shapes_with_and_without_the_context_channels(context):
    model = small(context).eval()
    assert model.context == context
    assert model(torch.randn(2, 6, 32, 48)).shape == (2, 4, 32, 48)
    assert model(torch.randn(1, 3, 36, 40)).shape == (1, 4, 36, 40)  # padded to the stride, context made from itself


def test_gradients_reach_both_encoders_and_the_context_matters():
    model = small()
    x = torch.randn(2, 6, 32, 32)
    model(x).square().mean().backward()
    trunk = model.trunk
    for encoder in (trunk.down, trunk.context_down):
        grads = [p.grad for p in encoder.parameters()]
        assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0
    model.eval()
    other = x.clone()
    other[:, 3:] = torch.randn(2, 3, 32, 32)
    assert not torch.allclose(model(x), model(other))  # another context, another prediction
    crop = x[:, :3]
    assert torch.allclose(model(crop), model(torch.cat([crop, self_context(crop, 2)], 1)), atol=1e-5)  # the fallback


def test_context_window_by_hand():
    image = np.arange(64 * 64 * 3, dtype=np.float32).reshape(64, 64, 3)
    assert context_bounds(16, 16, 16, 16, 2) == (8, 8, 40, 40)
    window = context_window(image, 16, 16, 16, 16, 2)
    expected = image[8:40, 8:40].reshape(16, 2, 16, 2, 3).mean(axis=(1, 3))  # inside: a 2x2 area average
    assert np.allclose(window, expected)
    corner = context_window(image, 0, 0, 16, 16, 4)  # reaches outside: the image mirrored (edge not repeated)
    padded = np.pad(image, ((24, 0), (24, 0), (0, 0)), mode="reflect")[:64, :64]
    assert np.allclose(corner, padded.reshape(16, 4, 16, 4, 3).mean(axis=(1, 3)))
    whole = torch.from_numpy(image).permute(2, 0, 1)[None]
    assert torch.allclose(self_context(whole, 2)[0].permute(1, 2, 0), torch.from_numpy(context_window(image, 0, 0, 64, 64, 2)))


def test_tiles_take_their_context_from_the_image_around_them():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
    tensor = to_tensor(image)
    tile = tile_input(image, tensor, (32, 64, 64, 96), context=2)
    assert tile.shape == (6, 32, 32)
    assert torch.equal(tile[:3], tensor[:, 32:64, 64:96])
    assert torch.allclose(tile[3:], to_tensor(context_window(image, 32, 64, 32, 32, 2)))
    model = small()
    probs = predict_image(model, image, tile_size=64, overlap=16)
    assert probs.shape == (4, 96, 128) and np.allclose(probs.sum(0), 1, atol=1e-4)


def test_context_needs_the_compact_unet():
    with pytest.raises(CrackalError, match="context"):
        create_model("fpn", 4, context=2)
    with pytest.raises(CrackalError, match="context"):
        create_model("unet", 4, context=3)


class TestTwoScaleUNet(ModelSuite):
    """The shared model tests (any size, gradients, dropout before the last conv, weights round trip)."""

    kwargs = {"base_channels": 4, "depth": 2, "context": 2}
