"""ONNX export of a trained segmentation run and prediction with ONNX Runtime (``crackal export
--format onnx``, ``crackal predict --engine onnxruntime``).

``crackal export RUN`` writes ``RUN/onnx/`` (with ``--int8`` also ``model.int8.onnx``, see
``crackal.inference.quantize``):

```
model.onnx   normalised image, padded to a multiple of the stride (N, 3, H, W) -> class probabilities (N, C, H, W)
trunk.onnx   the same input -> the trunk's features (N, F, h, w): the deterministic part, run once
head.onnx    features and a dropout keep-mask (N, F) -> class probabilities: one MC-Dropout sample
onnx.json    kind "segmenter", the files, stride, channels, dropout rate, threshold, the opset and the run's config
```

Height and width are dynamic. ``Dropout2d`` zeroes whole feature channels and scales the rest by
``1 / (1 - p)``, so one dropout draw is the head run on the features times a ``(N, F)`` mask:
the masks are drawn outside the graph, with torch's generator, exactly as the PyTorch head-only
path draws them, so the same seed gives the same samples (and the same BALD) under both engines.
Padding to the stride (reflect, or replicate for tiny images) and cropping back happen in NumPy
around the graphs, as ``Segmenter.forward`` does them.

The helpers shared with the detector and patch-classifier exports (``crackal.inference.onnx_detection``,
``crackal.classify.onnx``) live here too: ``require_onnx``, ``export_graph``, ``write_meta``,
``read_meta``, ``ort_session`` and ``onnx_folder``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from torch import nn

from crackal.errors import CrackalError
from crackal.models.outputs import class_probabilities
from crackal.models.segmenter import Segmenter
from crackal.runs.checkpoint import load_model, resolve_checkpoint
from crackal.runs.folders import run_dir_of
from crackal.uncertainty.sampling import HEAD_CHUNK, _chunks
from crackal.uncertainty.stats import SampleStats, StatsAccumulator

if TYPE_CHECKING:
    from onnxruntime import InferenceSession

OPSET = 18
FILES = ("model.onnx", "trunk.onnx", "head.onnx", "onnx.json")


class _Whole(nn.Module):
    def __init__(self, model: Segmenter) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return class_probabilities(self.model.head(self.model.features(x)))


class _Trunk(nn.Module):
    def __init__(self, model: Segmenter) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.features(x)


class _Head(nn.Module):
    """One dropout sample: ``features * keep`` (keep already scaled by ``1 / (1 - p)``) -> probabilities."""

    def __init__(self, model: Segmenter) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        return class_probabilities(self.model.upsample(self.model.classifier(features * keep[:, :, None, None])))


def require_onnx() -> None:
    """Raise a ``CrackalError`` saying how to install the exporter's ``onnx`` package when it is missing."""
    try:
        import onnx  # noqa: F401 - the exporter needs it
    except ImportError:
        raise CrackalError("ONNX export needs the onnx package: pip install 'crackal[onnx]'") from None


def export_graph(module: nn.Module, args: tuple, names: list[str], path: Path, dynamic: dict,
                 outputs: tuple[str, ...] = ("output",)) -> None:
    """Trace ``module`` (in eval mode: the exporter restores the mode it finds) into ``path`` with the
    legacy exporter at ``OPSET``."""
    import warnings

    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), input_names=names, output_names=list(outputs),
                          dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)


def write_meta(folder: Path, kind: str, files: tuple[str, ...], **meta) -> None:
    """Write ``onnx.json``: the export's ``kind``, its ``files`` (``onnx.json`` included), the opset and ``meta``."""
    record = {"kind": kind, "files": list(files), "opset": OPSET, **meta}
    (folder / "onnx.json").write_text(json.dumps(record, indent=1))


def read_meta(folder: str | Path, kind: str, files: tuple[str, ...]) -> dict:
    """``onnx.json`` of an export of ``kind`` (``segmenter``, ``classifier``, ``detector``) holding ``files``."""
    folder = Path(folder)
    missing = [name for name in files if not (folder / name).is_file()]
    if missing:
        raise CrackalError(f"{folder} lacks {', '.join(missing)}; run 'crackal export RUN --format onnx' first")
    meta = json.loads((folder / "onnx.json").read_text())
    found = meta.get("kind", "segmenter")  # exports before the detector and classifier had no kind
    if found != kind:
        raise CrackalError(f"{folder} holds a {found} export, not a {kind}; pass the ONNX folder of a {kind} run")
    return meta


def ort_session(path: Path, threads: int | None = None) -> InferenceSession:
    """An ONNX Runtime session of ``path`` on the CPU with ``threads`` intra-op threads (default: every CPU available)."""
    ort = import_onnxruntime()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def import_onnxruntime():
    """The ``onnxruntime`` module, or a ``CrackalError`` saying how to install it."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise CrackalError("--engine onnxruntime needs ONNX Runtime: pip install 'crackal[onnx]'") from None
    return ort


def export_onnx(checkpoint: str | Path, out: str | Path | None = None) -> Path:
    """Export a segmentation run (or checkpoint) to ONNX: ``model.onnx``, ``trunk.onnx``, ``head.onnx``
    and ``onnx.json`` in ``out`` (default ``RUN/onnx``); returns the folder."""
    require_onnx()
    ckpt = resolve_checkpoint(checkpoint)
    model, state = load_model(ckpt)
    if not isinstance(model, Segmenter):
        raise CrackalError(f"ONNX export handles the plain segmentation models, not {type(model).__name__} "
                           "(a --tile-filter run); predict it with the PyTorch engine")
    if model.context > 1:
        raise CrackalError("ONNX export does not handle the two-scale model (a --context run) yet; predict it with the PyTorch engine")
    model = model.float().to(memory_format=torch.contiguous_format).eval()
    folder = export_folder(ckpt, out)
    stride = model.stride
    x = torch.randn(1, model_in_channels(state), 2 * stride, 3 * stride)
    image_axes = {0: "batch", 2: "height", 3: "width"}
    with torch.no_grad():
        features = model.features(x)
        export_graph(_Whole(model), (x,), ["image"], folder / "model.onnx", {"image": image_axes, "output": image_axes})
        export_graph(_Trunk(model), (x,), ["image"], folder / "trunk.onnx", {"image": image_axes, "output": image_axes})
        keep = torch.ones(1, features.shape[1])
        export_graph(_Head(model), (features, keep), ["features", "keep"], folder / "head.onnx",
                     {"features": image_axes, "keep": {0: "batch"}, "output": image_axes})
    write_meta(folder, "segmenter", FILES, stride=stride, out_channels=model.out_channels,
               feature_channels=int(features.shape[1]), dropout=float(model.dropout.p),
               threshold=state.get("threshold", 0.5), checkpoint=str(ckpt), config=state["config"])
    return folder


def export_folder(checkpoint: Path, out: str | Path | None) -> Path:
    """Where an export goes: ``out``, or ``RUN/onnx`` of the checkpoint's run; created."""
    folder = Path(out) if out is not None else run_dir_of(checkpoint) / "onnx"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def model_in_channels(state: dict) -> int:
    """Input channels of a run's model: 6 for the Siamese change model, else 3."""
    return 6 if state["config"].get("arch") == "siamese_unet" else 3


def pad_to_stride(x: np.ndarray, stride: int) -> tuple[np.ndarray, tuple[int, int]]:
    """``Segmenter.pad`` in NumPy: reflect-pad ``(N, C, H, W)`` to a multiple of ``stride``
    (replicate when the image is too small to reflect); returns it and the original size."""
    h, w = x.shape[-2:]
    ph, pw = -h % stride, -w % stride
    if ph or pw:
        mode: Literal["reflect", "edge"] = "reflect" if ph < h and pw < w else "edge"
        x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode=mode)
    return x, (h, w)


def default_threads() -> int:
    """Intra-op threads for ONNX Runtime: the CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class OnnxSegmenter:
    """A run exported with ``export_onnx``, run by ONNX Runtime on the CPU.

    ``probabilities(batch)`` is ``class_probabilities(model(batch))``; ``predict_image`` accepts
    it in place of a PyTorch model, so tiling, blending and flip averaging are shared.
    """

    def __init__(self, folder: str | Path, threads: int | None = None, int8: bool = False) -> None:
        import_onnxruntime()
        self.folder, self.threads = Path(folder), threads
        self.meta = read_meta(self.folder, "segmenter", FILES)
        self.whole = "model"
        if int8:
            if not (self.folder / "model.int8.onnx").is_file():
                raise CrackalError(f"{self.folder} has no int8 graph; run 'crackal export RUN --format onnx --int8' first")
            self.whole = "model.int8"  # probabilities from the int8 graph; MC-Dropout stays float32
        self._sessions: dict[str, InferenceSession] = {}

    def session(self, name: str) -> InferenceSession:
        """The ONNX Runtime session of ``name`` (``model``, ``model.int8``, ``trunk`` or ``head``), opened once."""
        if name not in self._sessions:
            self._sessions[name] = ort_session(self.folder / f"{name}.onnx", self.threads)
        return self._sessions[name]

    @property
    def stride(self) -> int:
        """Inputs are padded to a multiple of this."""
        return int(self.meta["stride"])

    def run(self, name: str, **inputs: np.ndarray) -> np.ndarray:
        """Run one of the graphs on float32 inputs."""
        feeds = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in inputs.items()}
        return self.session(name).run(None, feeds)[0]

    def probabilities(self, batch: torch.Tensor | np.ndarray, tta: bool = False) -> torch.Tensor:
        """``(N, C, H, W)`` class probabilities of a normalised batch of any size (dropout off)."""
        from crackal.models.predict import FLIPS

        x = batch.cpu().numpy() if isinstance(batch, torch.Tensor) else np.asarray(batch)
        total = None
        for dims in FLIPS if tta else FLIPS[:1]:
            flipped = np.flip(x, dims) if dims else x
            padded, (h, w) = pad_to_stride(flipped, self.stride)
            probs = self.run(self.whole, image=padded)[..., :h, :w]
            probs = np.flip(probs, dims) if dims else probs
            total = probs if total is None else total + probs
        assert total is not None
        return torch.from_numpy(np.ascontiguousarray(total / (4 if tta else 1)))

    def mc_dropout(self, batch: torch.Tensor | np.ndarray, iterations: int = 20) -> SampleStats:
        """MC-Dropout moments on the head-only path: the trunk graph once, the head graph once per
        sample. The masks come from torch's generator in the order ``head_samples`` draws them, so
        under the same seed the samples are those of ``mc_dropout(model, batch, path="head")``."""
        x = batch.cpu().numpy() if isinstance(batch, torch.Tensor) else np.asarray(batch)
        p = float(self.meta["dropout"])
        if p <= 0:
            raise CrackalError("MC-Dropout needs a model with dropout (p > 0); use MC-BatchNorm or an ensemble")
        padded, (h, w) = pad_to_stride(x, self.stride)
        features = self.run("trunk", image=padded)
        n, channels = features.shape[:2]
        acc = StatsAccumulator()
        for chunk in _chunks(iterations, HEAD_CHUNK):
            masks = [torch.empty(n, channels, 1, 1).bernoulli_(1 - p) for _ in range(chunk)]
            samples = [self.run("head", features=features, keep=(m[..., 0, 0] / (1 - p)).numpy())[..., :h, :w] for m in masks]
            acc.add_stack(torch.from_numpy(np.stack(samples, 1)))
        return acc.result()


def onnx_folder(checkpoint: str | Path, export: bool = True,
                exporter: Callable[[str | Path, Path], Path] = export_onnx) -> Path:
    """The ONNX folder of a run, or ``checkpoint`` itself when it is one; written first by
    ``exporter`` (default: the segmentation export) when ``export`` and the run has none."""
    path = Path(checkpoint)
    if path.is_dir() and (path / "onnx.json").is_file():
        return path
    folder = run_dir_of(resolve_checkpoint(path)) / "onnx"
    if not (folder / "onnx.json").is_file():
        if not export:
            raise CrackalError(f"no ONNX export in {folder}; run 'crackal export {checkpoint} --format onnx'")
        exporter(checkpoint, folder)
    return folder


__all__ = ["OnnxSegmenter", "export_graph", "export_onnx", "onnx_folder", "ort_session", "pad_to_stride", "read_meta",
           "require_onnx", "write_meta"]
