"""ONNX export of a patch-classifier run and its prediction with ONNX Runtime (``crackal export
--format onnx``, ``crackal classify predict --engine onnxruntime``).

``crackal export RUN`` writes ``RUN/onnx/``:

```
model.onnx   normalised patches (N, 3, s, s) -> class probabilities (N, K); the batch is dynamic
onnx.json    kind "classifier", the files, the input size s, the class names, the opset and the run's config
```

``OnnxClassifier`` is a callable ``batch -> probabilities``, as ``patch_probabilities(model)`` is
for a PyTorch model, so the sliding window runs either one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from crackal.classify.model import load_classifier
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
from crackal.runs.checkpoint import read_checkpoint, resolve_checkpoint

FILES = ("model.onnx", "onnx.json")


class _Probabilities(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x).softmax(1)


def export_classifier_onnx(checkpoint: str | Path, out: str | Path | None = None) -> Path:
    """Export a patch-classifier run (or checkpoint) to ``model.onnx`` and ``onnx.json`` in ``out``
    (default ``RUN/onnx``); returns the folder."""
    require_onnx()
    ckpt = resolve_checkpoint(checkpoint)
    model, config = load_classifier(ckpt)
    folder = export_folder(ckpt, out)
    x = torch.randn(2, 3, config.size, config.size)
    with torch.no_grad():
        export_graph(_Probabilities(model.float()), (x,), ["patches"], folder / "model.onnx",
                     {"patches": {0: "batch"}, "output": {0: "batch"}})
    write_meta(folder, "classifier", FILES, size=config.size, class_names=config.class_names, checkpoint=str(ckpt),
               config=read_checkpoint(ckpt)["config"])
    return folder


class OnnxClassifier:
    """A classifier run exported with ``export_classifier_onnx``, run by ONNX Runtime on the CPU:
    ``classifier(batch)`` is the ``(N, K)`` class probabilities of normalised patches ``(N, 3, s, s)``."""

    def __init__(self, folder: str | Path, threads: int | None = None) -> None:
        import_onnxruntime()
        self.folder = Path(folder)
        self.meta = read_meta(self.folder, "classifier", FILES)
        self.session = ort_session(self.folder / "model.onnx", threads)

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        """Class probabilities ``(N, K)`` of a normalised batch ``(N, 3, s, s)``."""
        x = np.ascontiguousarray(batch.cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {"patches": x})[0])


def classifier_onnx_folder(run: str | Path) -> Path:
    """The ONNX folder of a classifier run (or ``run`` itself when it is one), exported first when missing."""
    return onnx_folder(run, exporter=export_classifier_onnx)


__all__ = ["OnnxClassifier", "classifier_onnx_folder", "export_classifier_onnx"]
