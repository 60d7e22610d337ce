"""The overlapped, batched prediction gives what the plain loop gives."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from crackal import api
from crackal.errors import CrackalError
from crackal.inference.stream import predict_stream
from crackal.models import create_model
from crackal.models.predict import predict_image
from tests.conftest import make_dataset


def test_batched_stream_equals_predict_image():
    torch_model = create_model("unet", base_channels=4, depth=2).eval()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, size, np.uint8) for size in [(40, 56, 3), (40, 56, 3), (90, 70, 3), (40, 56, 3), (33, 20, 3)]]
    streamed = list(predict_stream(torch_model, enumerate(images), tile_size=48, overlap=8, batch_size=3))
    assert [key for key, _, _ in streamed] == [0, 1, 2, 3, 4]
    for (_, image, probs), expected in zip(streamed, images):
        assert image is expected
        np.testing.assert_allclose(probs, predict_image(torch_model, image, tile_size=48, overlap=8), atol=1e-5)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("stream")
    data = make_dataset(root / "data")
    api.train(data, root / "run", val=1, test=1, epochs=1, arch="unet", base_channels=4, depth=2, crop_size=32, progress=False)
    return root / "run"


def test_overlapped_folder_prediction_equals_the_plain_loop(run, tmp_path):
    folder = make_dataset(tmp_path / "in", count=5, size=(40, 56)) / "images"
    make_dataset(tmp_path / "big", count=1, size=(90, 70))
    (tmp_path / "big" / "images" / "img0.png").rename(folder / "big.png")
    (folder / "broken.png").write_bytes(b"not a png")
    with pytest.raises(CrackalError, match="broken.png"):
        api.predict(run, folder, tmp_path / "fail", progress=False)
    plain = api.predict(run, folder, tmp_path / "plain", tile_size=48, overlap=8, workers=0, skip_invalid=True, progress=False)
    fast = api.predict(run, folder, tmp_path / "fast", tile_size=48, overlap=8, workers=2, batch_size=3, skip_invalid=True,
                       progress=False)
    assert [r["image"] for r in fast] == [r["image"] for r in plain] and len(plain) == 6
    for name in (r["image"] for r in plain):
        a, b = (np.asarray(Image.open(tmp_path / d / "probabilities" / name), np.int16) for d in ("plain", "fast"))
        assert np.abs(a - b).max() <= 1
    saved = json.loads((tmp_path / "fast" / "measurements.json").read_text())["images"]
    assert [r["image"] for r in saved] == [r["image"] for r in plain]
