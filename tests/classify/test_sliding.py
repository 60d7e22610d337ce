"""Sliding-window prediction: output shapes, strides and the image borders."""

import numpy as np
import pytest
import torch
from torch import nn

from crackal.classify.sliding import sliding_window, window_starts
from crackal.errors import CrackalError
from crackal.models.patch_classifier import PatchClassifier


class DarkWindow(nn.Module):
    """A stand-in classifier: class 1 probability = darkness of the window's mean."""

    def __init__(self):
        super().__init__()
        self.p = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        dark = -x.mean((1, 2, 3)) * 4
        return torch.stack([torch.zeros_like(dark), dark], 1)


@pytest.mark.parametrize("length,window,stride,expected", [
    (64, 32, 16, [0, 16, 32]),          # the stride lands on the border
    (70, 32, 16, [0, 16, 32, 38]),      # one more window, flush with the border
    (32, 32, 8, [0]),
    (20, 32, 8, [0]),                   # smaller than the window: padded
    (100, 32, 50, [0, 50, 68]),         # a stride larger than the window still reaches the border
])
def test_window_starts_cover_the_borders(length, window, stride, expected):
    starts = window_starts(length, window, stride)
    assert starts == expected and starts[-1] + window >= length


def test_bad_stride_is_a_user_error():
    with pytest.raises(CrackalError, match="stride"):
        window_starts(10, 4, 0)


@pytest.mark.parametrize("size,window,stride", [((70, 45), 32, 16), ((20, 90), 32, 32), ((64, 64), 16, 64)])
def test_output_shapes(size, window, stride):
    image = np.random.default_rng(0).integers(0, 255, (*size, 3), dtype=np.uint8)
    out = sliding_window(PatchClassifier(3), image, window, stride, batch_size=5, input_size=24)
    rows, cols = len(window_starts(size[0], window, stride)), len(window_starts(size[1], window, stride))
    assert out["grid"].shape == (3, rows, cols) and out["heat"].shape == (3, *size)
    np.testing.assert_allclose(out["heat"].sum(0), 1, atol=1e-5)
    if stride > window:  # pixels between windows are still covered (the border window)
        assert np.isfinite(out["heat"]).all()


def test_border_pixels_see_the_border_window():
    image = np.full((40, 70, 3), 200, np.uint8)
    image[:, 66:] = 0  # a dark strip only the last (flush) window reaches
    out = sliding_window(DarkWindow(), image, 32, 32, batch_size=3)
    assert out["lefts"] == [0, 32, 38]
    crack = out["heat"][1]
    assert crack[:, 69].mean() > 3 * crack[:, 10].mean()  # the border is scored, not dropped
    np.testing.assert_allclose(crack[:, 40], out["grid"][1][:, 1:].mean(), rtol=1e-5)  # two windows overlap there


def test_batching_does_not_change_the_result():
    image = np.random.default_rng(1).integers(0, 255, (50, 61, 3), dtype=np.uint8)
    model = PatchClassifier(2).eval()
    a = sliding_window(model, image, 16, 8, batch_size=1)
    b = sliding_window(model, image, 16, 8, batch_size=100)
    np.testing.assert_allclose(a["grid"], b["grid"], atol=1e-5)
