"""Static int8 quantisation of a segmentation run's ONNX graph (``crackal export --int8``,
``crackal predict --engine onnxruntime-int8``).

``model.int8.onnx`` is ``model.onnx`` with its convolutions in int8: weights per output channel,
uint8 activations, in QDQ form (ONNX Runtime fuses each quantise-conv-dequantise into an integer
convolution: VNNI / AVX2 int8 kernels on an x86 CPU). Only convolutions are quantised, and not
the first (the image) nor the last (the class scores): quantising every operator also rounds the
integer arithmetic of the encoder's "same" padding and of the blending shapes, which shifted
feature maps and halved the crack F1 in a first try (benchmarks/field_speed.py). The activations' ranges come from
calibration tiles: random crops of the run's own training images (or of ``calibration``), as
``predict`` feeds them (crackal's normalisation). ``onnx.json`` records the file, the tiles and
their source. MC-Dropout (trunk and head graphs) stays in float32.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from crackal.data.io import list_images, read_image
from crackal.data.transforms import to_tensor
from crackal.errors import CrackalError

INT8_FILE = "model.int8.onnx"
CALIBRATION_TILES = 16


def calibration_images(folder: Path, calibration: str | Path | None) -> list[Path]:
    """The images whose crops calibrate the activations: ``calibration`` (a folder of images or a
    dataset root with ``images/``), else the training data the run's ``data.json`` names."""
    if calibration is None:
        record = json.loads((folder / "onnx.json").read_text()).get("checkpoint")
        data = Path(record).parent.parent / "data.json" if record else None
        if data is None or not data.is_file():
            raise CrackalError(f"{folder}: the run's training data are not recorded; pass --calibration DIR "
                               "(images like the ones to predict)")
        calibration = json.loads(data.read_text())["root"]
    root = Path(calibration)
    images = list_images(root / "images") if (root / "images").is_dir() else list_images(root) if root.is_dir() else []
    if not images:
        raise CrackalError(f"no calibration images in {root}; pass --calibration DIR with images like the ones to predict")
    return images


def calibration_tiles(images: list[Path], tile: int, count: int = CALIBRATION_TILES, seed: int = 0) -> list[np.ndarray]:
    """``count`` normalised ``(1, 3, tile, tile)`` crops (smaller images whole), spread over the images."""
    rng = np.random.default_rng(seed)
    tiles = []
    for i in range(count):
        image = read_image(images[i % len(images)])
        h, w = image.shape[:2]
        y, x = int(rng.integers(0, max(h - tile, 0) + 1)), int(rng.integers(0, max(w - tile, 0) + 1))
        tiles.append(to_tensor(image[y:y + tile, x:x + tile]).unsqueeze(0).numpy())
    return tiles


def quantize_int8(folder: str | Path, calibration: str | Path | None = None, tiles: int = CALIBRATION_TILES,
                  tile: int = 256) -> Path:
    """Write ``model.int8.onnx`` next to ``model.onnx`` in an export ``folder`` and record it in
    ``onnx.json``; returns its path."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    folder = Path(folder)
    images = calibration_images(folder, calibration)
    stride = int(json.loads((folder / "onnx.json").read_text())["stride"])
    crops = calibration_tiles(images, max(stride, tile - tile % stride), tiles)

    class Tiles(CalibrationDataReader):
        def __init__(self) -> None:
            self.left = iter(crops)

        def get_next(self) -> dict | None:
            crop = next(self.left, None)
            return None if crop is None else {"image": crop}

    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        prepared = Path(scratch) / "model.pre.onnx"
        quant_pre_process(str(folder / "model.onnx"), str(prepared), skip_symbolic_shape=True)
        convs = [node.name for node in onnx.load(str(prepared)).graph.node if node.op_type == "Conv"]
        partial = Path(scratch) / INT8_FILE
        quantize_static(str(prepared), str(partial), Tiles(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        op_types_to_quantize=["Conv"], nodes_to_exclude=[convs[0], convs[-1]])
        partial.replace(folder / INT8_FILE)
    meta = json.loads((folder / "onnx.json").read_text())
    meta["int8"] = {"file": INT8_FILE, "calibration_tiles": len(crops), "tile": int(crops[0].shape[-1]),
                    "calibration_images": str(images[0].parent), "weights": "int8 per channel", "activations": "uint8",
                    "quantised": f"{len(convs) - 2} of {len(convs)} convolutions (not the first nor the last)"}
    (folder / "onnx.json").write_text(json.dumps(meta, indent=1))
    return folder / INT8_FILE
