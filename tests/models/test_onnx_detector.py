"""ONNX export of a RetinaNet run: ONNX Runtime gives PyTorch's boxes, scores and labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from crackal import api
from crackal.cli import main
from crackal.data.boxes import ImageBoxes
from crackal.errors import CrackalError
from crackal.models.detect import detect_image
from crackal.models.detector import create_detector
from crackal.runs.checkpoint import atomic_save, load_detector
from crackal.runs.config import DetectionConfig

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from crackal.inference.onnx_detection import OnnxDetector, export_detector_onnx  # noqa: E402

BOX_TOLERANCE = 1e-3  # px: float32 rounding of the regressions (~4e-6) times anchor widths up to 812 px in the decoding


def detector_run(root, image_size=0):
    """A seeded, untrained detector saved as a run, its classification bias zeroed so that many
    boxes of both defect classes pass the 0.05 floor (scores around 0.5)."""
    torch.manual_seed(0)
    config = DetectionConfig(class_names=["background", "crack", "pothole"], image_size=image_size)
    state = create_detector(**config.model_kwargs()).state_dict()
    state["head.classification_head.cls_logits.1.bias"].zero_()
    (root / "checkpoints").mkdir(parents=True)
    atomic_save({"task": "detection", "model": state, "config": config.to_dict(), "threshold": 0.01, "epoch": 1},
                root / "checkpoints" / "best.pt")
    return root


def assert_same_detections(a: ImageBoxes, b: ImageBoxes) -> float:
    """Every box of ``a`` has its own box in ``b`` with its label, score (1e-5) and corners; the order
    may differ where two scores tie to 1e-6. Returns the largest corner difference."""
    assert len(a) == len(b)
    free, worst = np.ones(len(b), bool), 0.0
    for box, label, score in zip(a.boxes, a.labels, a.scores):
        corner = np.abs(b.boxes - box).max(1)
        fits = free & (b.labels == label) & (corner <= BOX_TOLERANCE) & (np.abs(b.scores - score) <= 1e-5)
        assert fits.any(), f"no match for box {box}, label {label}, score {score}"
        j = int(np.where(fits, corner, np.inf).argmin())
        free[j], worst = False, max(worst, float(corner[j]))
    return worst


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return detector_run(tmp_path_factory.mktemp("onnx_det") / "run")


@pytest.fixture(scope="module")
def exported(run):
    return api.export(run)  # the run's kind picks the detector export


@pytest.fixture(scope="module")
def engines(run, exported):
    return load_detector(run)[0], OnnxDetector(exported, threads=1)


def test_export_writes_the_detector_files(exported):
    meta = json.loads((exported / "onnx.json").read_text())
    assert meta["kind"] == "detector" and meta["files"] == ["model.onnx", "onnx.json"]
    assert meta["class_names"] == ["background", "crack", "pothole"] and meta["threshold"] == 0.01


@pytest.mark.parametrize("size", [(64, 96), (45, 70)])
def test_onnx_runtime_gives_the_pytorch_boxes(engines, size):
    model, runtime = engines
    image = np.random.default_rng(size[0]).integers(0, 256, (*size, 3), dtype=np.uint8)
    expected, got = detect_image(model, image), runtime(image)
    assert len(expected) > 50 and len(set(expected.labels)) > 1  # boxes of several classes to compare
    worst = assert_same_detections(expected, got)
    print(f"{size}: {len(got)} boxes, largest corner difference {worst:.2e} px")


@pytest.mark.slow
def test_the_resize_to_image_size_is_traced_too(tmp_path):
    run = detector_run(tmp_path / "run", image_size=64)
    folder = export_detector_onnx(run)
    image = np.random.default_rng(1).integers(0, 256, (37, 53, 3), dtype=np.uint8)  # scaled up, unlike the trace input
    expected, got = detect_image(load_detector(run)[0], image), OnnxDetector(folder, threads=1)(image)
    assert len(expected) > 50 and expected.boxes.max() <= 53.001  # back in the image's own pixels
    assert_same_detections(expected, got)


def test_detect_predict_with_onnxruntime_writes_the_same_boxes(run, exported, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(3)
    for name, size in (("a.png", (48, 64)), ("b.png", (64, 40))):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(images / name)
    for engine in ("torch", "onnxruntime"):
        assert main(["detect", "predict", str(run), str(images), "--out", str(tmp_path / engine), "--format", "coco",
                     "--engine", engine, "--threads", "1", "--quiet"]) == 0
    coco = [json.loads((tmp_path / engine / "boxes.json").read_text()) for engine in ("torch", "onnxruntime")]
    for image in coco[0]["images"]:
        found = [[a for a in c["annotations"] if a["image_id"] == image["id"]] for c in coco]
        as_boxes = [ImageBoxes(np.array([a["bbox"] for a in f]), np.array([a["category_id"] for a in f]),
                               np.zeros(len(f))) for f in found]
        assert len(found[0]) > 0
        assert_same_detections(*as_boxes)
    counts = [json.loads((tmp_path / engine / "detections.json").read_text())["boxes"] for engine in ("torch", "onnxruntime")]
    assert counts[0] == counts[1]


def test_a_segmentation_export_is_not_a_detector(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"")
    (tmp_path / "onnx.json").write_text(json.dumps({"kind": "segmenter"}))
    with pytest.raises(CrackalError, match="holds a segmenter export, not a detector"):
        OnnxDetector(tmp_path)
    with pytest.raises(CrackalError, match="crackal export"):
        OnnxDetector(tmp_path / "missing")
