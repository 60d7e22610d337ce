"""ONNX export of a patch-classifier run: ONNX Runtime gives PyTorch's probabilities, in the
sliding window too, and ``crackal classify predict --engine onnxruntime`` writes the same maps."""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from crackal.classify.sliding import sliding_window
from crackal.classify.workflow import load_classifier, train_classifier
from crackal.cli import main
from crackal.errors import CrackalError

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from crackal.classify.onnx import OnnxClassifier, export_classifier_onnx  # noqa: E402


def _write_images(folder, sizes, seed=0):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i, size in enumerate(sizes):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    return folder


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx_cls")
    patches = root / "patches"
    for label in ("Negative", "Positive"):
        _write_images(patches / label, [(32, 32)] * 6, seed=len(label))
    train_classifier(patches, root / "run", val=0.25, test=0.25, size=32, widths=[4, 8], epochs=1, batch_size=4)
    return root / "run"


@pytest.fixture(scope="module")
def exported(run):
    return export_classifier_onnx(run)


@pytest.mark.parametrize("batch", [1, 5])
def test_onnx_runtime_matches_pytorch(run, exported, batch):
    model, config = load_classifier(run)
    x = torch.randn(batch, 3, config.size, config.size, generator=torch.Generator().manual_seed(batch))
    with torch.no_grad():
        expected = model(x).softmax(1)
    got = OnnxClassifier(exported, threads=1)(x)
    assert got.shape == (batch, 2)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)


@pytest.mark.parametrize("size,window", [((40, 56), 24), ((70, 50), 48)])
def test_the_sliding_window_runs_either_engine(run, exported, size, window):
    model, config = load_classifier(run)
    image = np.random.default_rng(size[0]).integers(0, 256, (*size, 3), dtype=np.uint8)
    expected = sliding_window(model, image, window, window // 2, batch_size=4, input_size=config.size)
    got = sliding_window(OnnxClassifier(exported), image, window, window // 2, batch_size=4, input_size=config.size)
    np.testing.assert_allclose(got["grid"], expected["grid"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(got["heat"], expected["heat"], atol=1e-4, rtol=0)


def test_export_and_predict_from_the_command_line(run, tmp_path, capsys):
    out = tmp_path / "exported"
    assert main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    assert "exported the classifier" in capsys.readouterr().out
    meta = json.loads((out / "onnx.json").read_text())
    assert meta["kind"] == "classifier" and meta["size"] == 32 and meta["class_names"] == ["Negative", "Positive"]
    assert sorted(p.name for p in out.iterdir()) == meta["files"] == ["model.onnx", "onnx.json"]
    images = _write_images(tmp_path / "images", [(50, 70), (30, 40)])
    for engine in ("torch", "onnxruntime"):
        assert main(["classify", "predict", str(run), str(images), "--out", str(tmp_path / engine), "--engine", engine,
                     "--threads", "1", "--window", "24", "--stride", "10"]) == 0
    for name in ("img0", "img1"):
        heat = [np.asarray(Image.open(tmp_path / e / "heatmaps" / f"{name}.png"), np.int16) for e in ("torch", "onnxruntime")]
        assert np.abs(heat[0] - heat[1]).max() <= 1
        rows = [list(csv.reader((tmp_path / e / "windows" / f"{name}.csv").open())) for e in ("torch", "onnxruntime")]
        assert rows[0][0] == rows[1][0] and len(rows[0]) == len(rows[1]) > 2
        np.testing.assert_allclose(np.array(rows[0][1:], float), np.array(rows[1][1:], float), atol=2e-4)
    assert json.loads((tmp_path / "onnxruntime" / "predictions.json").read_text())["engine"] == "onnxruntime"
    assert main(["classify", "predict", str(run), str(images), "--engine", "tensorrt"]) == 1


def test_missing_packages_and_exports_are_clear_errors(run, tmp_path, monkeypatch):
    with pytest.raises(CrackalError, match="crackal export"):
        OnnxClassifier(tmp_path)
    (tmp_path / "model.onnx").write_bytes(b"")
    (tmp_path / "onnx.json").write_text(json.dumps({"kind": "detector"}))
    with pytest.raises(CrackalError, match="holds a detector export, not a classifier"):
        OnnxClassifier(tmp_path)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now fails
    with pytest.raises(CrackalError, match=r"pip install 'crackal\[onnx\]'"):
        OnnxClassifier(tmp_path)
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(CrackalError, match=r"pip install 'crackal\[onnx\]'"):
        export_classifier_onnx(run, tmp_path / "out")


def test_the_checkpoint_says_which_export_to_run(run, tmp_path):
    from crackal.runs.checkpoint import checkpoint_task, load_model, read_checkpoint

    assert checkpoint_task(read_checkpoint(run)) == "classification"
    old = {"model": {}, "config": {"size": 32, "widths": [4, 8]}}  # a classifier saved before checkpoints named their task
    assert checkpoint_task(old) == "classification"
    assert checkpoint_task({"model": {}, "config": {"arch": "unet"}}) == "segmentation"
    assert checkpoint_task({"model": {}, "config": {}, "task": "detection"}) == "detection"
    with pytest.raises(CrackalError, match="patch classifier; use 'crackal classify"):
        load_model(run)
