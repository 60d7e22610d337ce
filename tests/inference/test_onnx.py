"""ONNX export and ONNX Runtime: the same probabilities and the same MC-Dropout samples as PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from crackal import api
from crackal.acquisition.heuristics import bald
from crackal.cli import main
from crackal.errors import CrackalError
from crackal.models.outputs import class_probabilities
from crackal.runs.checkpoint import load_model
from crackal.uncertainty.sampling import mc_dropout
from tests.conftest import make_dataset

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from crackal.inference.onnx import OnnxSegmenter, export_onnx, pad_to_stride  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx")
    data = make_dataset(root / "data")
    api.train(data, root / "run", val=1, test=1, epochs=1, arch="unet", base_channels=4, depth=2, crop_size=32, progress=False)
    return root / "run"


@pytest.fixture(scope="module")
def exported(run):
    return export_onnx(run)


@pytest.mark.parametrize("size", [(37, 53), (64, 96)])
def test_onnx_runtime_matches_pytorch_on_two_sizes(run, exported, size):
    model, _ = load_model(run)
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = class_probabilities(model(x))
    got = OnnxSegmenter(exported, threads=1).probabilities(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


def test_flip_averaging_matches_too(run, exported):
    from crackal.models.predict import forward_probabilities

    model, _ = load_model(run)
    x = torch.randn(1, 3, 40, 40)
    torch.testing.assert_close(OnnxSegmenter(exported).probabilities(x, tta=True), forward_probabilities(model, x, tta=True),
                               atol=1e-4, rtol=0)


def test_two_graph_mc_dropout_gives_the_head_only_bald(run, exported):
    model, _ = load_model(run)
    x = torch.randn(2, 3, 37, 53, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(5)
    expected = mc_dropout(model, x, iterations=23, path="head")
    torch.manual_seed(5)
    got = OnnxSegmenter(exported).mc_dropout(x, iterations=23)  # same seed: the same dropout masks
    torch.testing.assert_close(got.mean, expected.mean, atol=1e-5, rtol=0)
    torch.testing.assert_close(bald(got), bald(expected), atol=1e-5, rtol=0)
    assert bald(got).abs().max() > 0  # the samples differ: dropout was active


def test_pad_to_stride_is_the_segmenter_padding():
    x = np.arange(2 * 5 * 7, dtype=np.float32).reshape(1, 2, 5, 7)
    padded, size = pad_to_stride(x, 4)
    assert padded.shape == (1, 2, 8, 8) and size == (5, 7)
    from torch.nn import functional as F
    np.testing.assert_array_equal(padded, F.pad(torch.from_numpy(x), (0, 1, 0, 3), mode="reflect").numpy())


def test_predict_with_onnxruntime_writes_the_same_outputs(run, exported, tmp_path):
    images = make_dataset(tmp_path / "new", count=2, size=(70, 90)) / "images"
    torch_records = api.predict(run, images, tmp_path / "torch", tile_size=48, overlap=8, progress=False)
    onnx_records = api.predict(run, images, tmp_path / "ort", tile_size=48, overlap=8, engine="onnxruntime", progress=False)
    assert [r["image"] for r in onnx_records] == [r["image"] for r in torch_records]
    for name in ("img0.png", "img1.png"):
        probs = [np.asarray(Image.open(tmp_path / out / "probabilities" / name), np.int16) for out in ("torch", "ort")]
        assert np.abs(probs[0] - probs[1]).max() <= 1
        masks = [np.asarray(Image.open(tmp_path / out / "masks" / name)) for out in ("torch", "ort")]
        assert (masks[0] != masks[1]).mean() < 0.001


def test_export_and_predict_from_the_command_line(run, tmp_path, capsys):
    out = tmp_path / "exported"
    assert main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["head.onnx", "model.onnx", "onnx.json", "trunk.onnx"]
    images = make_dataset(tmp_path / "new", count=1) / "images"
    assert main(["predict", str(run), str(images), "--out", str(tmp_path / "p"), "--engine", "onnxruntime", "--quiet"]) == 0
    assert (tmp_path / "p" / "masks" / "img0.png").is_file()
    assert main(["export", str(run), "--format", "tflite"]) == 1
    assert "must be one of onnx" in capsys.readouterr().err
    assert main(["predict", str(run), str(images), "--engine", "tensorrt", "--quiet"]) == 1


def test_missing_export_is_a_clear_error(tmp_path):
    with pytest.raises(CrackalError, match="crackal export"):
        OnnxSegmenter(tmp_path)


def test_int8_graph_is_calibrated_on_the_runs_images_and_predicts_close_to_float(run, tmp_path):
    folder = api.export(run, tmp_path / "q", int8=True)  # calibration: the run's own training images
    meta = __import__("json").loads((folder / "onnx.json").read_text())
    assert meta["int8"]["file"] == "model.int8.onnx" and meta["int8"]["calibration_tiles"] == 16
    assert meta["int8"]["calibration_images"].endswith("images")
    x = torch.from_numpy(np.stack([np.asarray(Image.open(p).convert("RGB"), np.float32) for p in
                                   sorted((run.parent / "data" / "images").iterdir())[:2]]).transpose(0, 3, 1, 2) / 255)
    x = (x - 0.5) / 0.25
    float32 = OnnxSegmenter(folder).probabilities(x)
    int8 = OnnxSegmenter(folder, int8=True).probabilities(x)
    assert int8.shape == float32.shape and not torch.equal(int8, float32)  # a different graph ran
    assert (int8 - float32).abs().mean() < 0.02 and ((int8[:, 1] > 0.5) == (float32[:, 1] > 0.5)).float().mean() > 0.98
    with pytest.raises(CrackalError, match="no int8 graph"):
        OnnxSegmenter(exported_without_int8 := export_onnx(run, tmp_path / "plain"), int8=True)
    assert (exported_without_int8 / "model.onnx").is_file()


def test_int8_engine_quantises_when_missing_and_bad_calibration_is_clear(run, tmp_path, capsys):
    images = make_dataset(tmp_path / "new", count=1, size=(70, 90)) / "images"
    assert main(["predict", str(run), str(images), "--out", str(tmp_path / "p"), "--engine", "onnxruntime-int8", "--quiet"]) == 0
    assert (run / "onnx" / "model.int8.onnx").is_file() and (tmp_path / "p" / "masks" / "img0.png").is_file()
    (tmp_path / "empty").mkdir()
    assert main(["export", str(run), "--out", str(tmp_path / "e"), "--int8", "--calibration", str(tmp_path / "empty")]) == 1
    assert "no calibration images" in capsys.readouterr().err
