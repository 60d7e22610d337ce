"""ONNX export of a detector run (torchvision's RetinaNet, whole) and its prediction with ONNX
Runtime (``crackal export --format onnx``, ``crackal detect predict --engine onnxruntime``).

``crackal export RUN`` writes ``RUN/onnx/``:

```
model.onnx   one image (3, H, W) in [0, 1] -> boxes (B, 4) in its pixels, scores (B,), labels (B,)
onnx.json    kind "detector", the files, the class names, the score threshold, the opset and the run's config
```

The whole model is one graph: torchvision's normalisation, resizing (``--image-size``) and
padding, the backbone, the feature pyramid, the heads, the anchors, the box decoding, the
per-class NMS and the resizing of the boxes back to the image all trace with the legacy exporter,
and height and width stay dynamic. The graph keeps the boxes scoring at least the model's own
floor (``create_detector``'s ``score_threshold``, 0.05), at most ``detections_per_image``;
the run's threshold is applied afterwards, as the PyTorch engine does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from crackal.data.boxes import ImageBoxes
from crackal.inference.onnx import (
    export_folder,
    export_graph,
    import_onnxruntime,
    onnx_folder,
    ort_session,
    read_meta,
    require_onnx,
    write_meta,
)
from crackal.models.detect import image_tensor
from crackal.runs.checkpoint import load_detector, resolve_checkpoint
from crackal.runs.config import DetectionConfig

FILES = ("model.onnx", "onnx.json")
OUTPUTS = ("boxes", "scores", "labels")


class _OneImage(nn.Module):
    """The detector on one ``(3, H, W)`` image, its detections as a tuple of tensors."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        found = self.model([image])[0]
        return found["boxes"], found["scores"], found["labels"]


def export_detector_onnx(checkpoint: str | Path, out: str | Path | None = None) -> Path:
    """Export a detector run (or checkpoint) to ``model.onnx`` and ``onnx.json`` in ``out``
    (default ``RUN/onnx``); returns the folder."""
    require_onnx()
    ckpt = resolve_checkpoint(checkpoint)
    model, state = load_detector(ckpt)
    folder = export_folder(ckpt, out)
    image = torch.rand(3, 64, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        export_graph(_OneImage(model.float()), (image,), ["image"], folder / "model.onnx",
                     {"image": {1: "height", 2: "width"}, **{name: {0: "boxes"} for name in OUTPUTS}}, OUTPUTS)
    config = DetectionConfig.from_dict(state["config"])
    write_meta(folder, "detector", FILES, class_names=config.class_names, threshold=state.get("threshold", 0.5),
               checkpoint=str(ckpt), config=state["config"])
    return folder


class OnnxDetector:
    """A detector run exported with ``export_detector_onnx``, run by ONNX Runtime on the CPU:
    ``detector(image)`` is the ``ImageBoxes`` of an ``(H, W, 3) uint8`` image, as ``detect_image``
    gives them for the PyTorch model."""

    def __init__(self, folder: str | Path, threads: int | None = None) -> None:
        import_onnxruntime()
        self.folder = Path(folder)
        self.meta = read_meta(self.folder, "detector", FILES)
        self.session = ort_session(self.folder / "model.onnx", threads)

    def __call__(self, image: np.ndarray) -> ImageBoxes:
        """Boxes, labels and scores of one ``(H, W, 3) uint8`` image."""
        boxes, scores, labels = self.session.run(None, {"image": image_tensor(image).numpy()})
        return ImageBoxes(boxes.astype(np.float32), labels.astype(np.int64), scores.astype(np.float32))


def detector_onnx_folder(run: str | Path) -> Path:
    """The ONNX folder of a detector run (or ``run`` itself when it is one), exported first when missing."""
    return onnx_folder(run, exporter=export_detector_onnx)


__all__ = ["OnnxDetector", "detector_onnx_folder", "export_detector_onnx"]
