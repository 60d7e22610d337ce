"""Predicting a folder of images with a trained run: masks, probability maps, overlays and
defect measurements (``crackal predict``).

```
OUT/masks/<name>.png          class mask (0/255 for binary models, class indices otherwise)
OUT/probabilities/<name>.png  defect probability x 255
OUT/overlays/<name>.png       the image with each defect class painted in its colour
OUT/measurements.csv / .json  per image: size, seconds, area (px, m^2), crack length and width
```
"""

from __future__ import annotations

import csv
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn

from crackal.data.io import list_images, mask_png, read_image, write_png
from crackal.errors import CrackalError, check_options, choose
from crackal.inference.measure import measure_defects
from crackal.inference.render import class_mask_from_probs, overlay, probability_png
from crackal.inference.stream import ahead, default_workers, predict_stream
from crackal.inference.two_stage import predict_two_stage
from crackal.models.predict import Engine as NetworkEngine
from crackal.models.predict import predict_image
from crackal.options import ENGINES, Engine
from crackal.progress import Progress
from crackal.training.checkpoint import atomic_write_json, load_model, read_checkpoint
from crackal.training.config import TrainConfig
from crackal.training.detection import load_detector

Predictor = Callable[[np.ndarray], np.ndarray]  # image (H, W, 3) uint8 -> probabilities (C, H, W)


def image_files(inputs: str | Path) -> list[Path]:
    """One image, or the images of a folder; an error when there is none."""
    inputs = Path(inputs)
    files = [inputs] if inputs.is_file() else list_images(inputs)
    if not files:
        raise CrackalError(f"no images (.jpg/.png/.tif/.bmp) in {inputs}")
    return files


def check_tiling(tile_size: int, overlap: int) -> None:
    """Tiles must be at least 32 px and overlap by less than a tile."""
    check_options([
        (tile_size >= 32, "tile_size", f"must be at least 32 px, got {tile_size}"),
        (overlap >= 0, "overlap", f"must be >= 0 px, got {overlap}"),
        (overlap < tile_size, "overlap", f"must be less than the tile size ({tile_size} px), got {overlap}"),
    ])


def two_stage_predictor(model, config: TrainConfig, detector_run: str | Path, margin: int, box_threshold: float | None,
                        tta: bool, tile_size: int) -> Predictor:
    """image -> probabilities by detect-then-segment with the detector of ``detector_run``."""
    detector, det_state = load_detector(detector_run)
    threshold = det_state.get("threshold", 0.5) if box_threshold is None else box_threshold
    check_options([(margin >= 0, "box_margin", f"must be >= 0 px, got {margin}")])

    def run(image: np.ndarray) -> np.ndarray:
        return predict_two_stage(model, detector, image, config.num_classes, threshold, margin, tile_size, tta)[0]

    return run


def _flatten(measurements: dict) -> dict:
    return {f"{name}_{key}": value for name, entry in measurements.items() for key, value in entry.items()}


def write_table(records: list[dict], path: Path) -> None:
    """Records as CSV, one column per key seen in any record."""
    columns = list(dict.fromkeys(k for r in records for k in r))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(records)


@dataclass
class ImagePredictor:
    """Image -> class probabilities ``(C, H, W)``: a network (a PyTorch model or an ONNX Runtime
    engine) run tiled, or a per-image function (detect-then-segment)."""

    model: nn.Module | NetworkEngine | None
    function: Predictor | None
    tile_size: int
    overlap: int
    tta: bool

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """The probabilities of one image."""
        if self.function is not None:
            return self.function(image)
        assert self.model is not None
        return predict_image(self.model, image, tile_size=self.tile_size, overlap=self.overlap, tta=self.tta)

    def stream(self, images: Iterable[tuple[object, np.ndarray]], batch_size: int) -> Iterator[tuple[object, np.ndarray, np.ndarray]]:
        """``(key, image, probabilities)`` in order; a network's tiles of consecutive images are
        batched together (``predict_stream``)."""
        if self.model is None:
            yield from ((key, image, self(image)) for key, image in images)
        else:
            yield from predict_stream(self.model, images, self.tile_size, self.overlap, self.tta, batch_size)


def check_prediction_options(gsd: float | None) -> None:
    """The options of a folder prediction that do not depend on the run."""
    check_options([(gsd is None or gsd > 0, "gsd", f"is the ground sampling distance in metres per pixel and must be > 0, got {gsd}")])


def make_predictor(
    checkpoint: str | Path,
    *,
    threshold: float | None = None,
    tile_size: int | None = None,
    overlap: int = 64,
    tta: bool = False,
    two_stage: str | Path | None = None,
    box_margin: int = 16,
    box_threshold: float | None = None,
    engine: Engine = "torch",
    threads: int | None = None,
    device: str = "cpu",
    load: bool = True,
) -> tuple[ImagePredictor, TrainConfig, float]:
    """The prediction of one image (an ``ImagePredictor``: image -> probabilities), with the run's config
    and the crack threshold (see ``predict_folder`` for the options). ``load=False`` only checks
    the options (and writes a missing ONNX export): the function returned then must not be used.
    """
    state = read_checkpoint(checkpoint)
    config = TrainConfig.from_dict(state["config"])
    threshold = state.get("threshold", 0.5) if threshold is None else threshold
    tile_size = config.tile_size if tile_size is None else tile_size
    check_options([(0 < threshold < 1, "threshold", f"must be between 0 and 1, got {threshold}")])
    check_tiling(tile_size, overlap)
    choose(ENGINES, engine, "engine")
    if engine == "onnxruntime":
        if two_stage:
            raise CrackalError("two-stage prediction runs on the PyTorch engine; leave out --engine onnxruntime")
        from crackal.inference.onnx import OnnxSegmenter, onnx_folder

        folder = onnx_folder(checkpoint)
        runtime = OnnxSegmenter(folder, threads=threads) if load else None

        return ImagePredictor(runtime, None, tile_size, overlap, tta), config, threshold
    model = load_model(checkpoint, device)[0] if load else None
    if two_stage and load:
        two_stage_fn = two_stage_predictor(model, config, two_stage, box_margin, box_threshold, tta, tile_size)
        return ImagePredictor(None, two_stage_fn, tile_size, overlap, tta), config, threshold
    return ImagePredictor(model, None, tile_size, overlap, tta), config, threshold


def predict_folder(
    checkpoint: str | Path,
    inputs: str | Path,
    out: str | Path,
    *,
    gsd: float | None = None,
    threshold: float | None = None,
    tile_size: int | None = None,
    overlap: int = 64,
    tta: bool = False,
    skip_invalid: bool = False,
    progress: bool | Progress = True,
    two_stage: str | Path | None = None,
    box_margin: int = 16,
    box_threshold: float | None = None,
    engine: Engine = "torch",
    threads: int | None = None,
    workers: int | None = None,
    batch_size: int = 4,
) -> list[dict]:
    """Predict a folder or a single image; writes ``masks/``, ``probabilities/``, ``overlays/``
    and ``measurements.csv/.json`` (area in px, and m^2 when ``gsd`` in metres/pixel is given);
    returns one record per image.

    The crack threshold defaults to the one chosen on the validation split during training.
    Images larger than ``tile_size`` (default: the run's) are cut into tiles overlapping by
    ``overlap`` px. With ``two_stage`` (a run of ``crackal detect train``) the detector runs
    first and the model segments only its boxes, grown by ``box_margin`` px (boxes scoring below
    ``box_threshold``, default the detector's validation choice, are dropped); the rest is
    background.

    ``engine="onnxruntime"`` runs the run's ONNX export (``RUN/onnx``, written first when missing)
    with ONNX Runtime on the CPU, ``threads`` intra-op threads (default: every CPU available).

    ``workers`` threads (default 2) read and decode the next images and write the finished ones
    while the network runs, and the tiles (or whole small images) of consecutive images go through
    it ``batch_size`` at a time; ``workers=0`` is the plain loop, one image after the other.
    """
    files, out = image_files(inputs), Path(out)
    check_prediction_options(gsd)
    workers = default_workers() if workers is None else workers
    check_options([(workers >= 0, "workers", f"must be >= 0, got {workers}"),
                   (batch_size >= 1, "batch_size", f"must be >= 1, got {batch_size}")])
    predictor, config, threshold = make_predictor(
        checkpoint, threshold=threshold, tile_size=tile_size, overlap=overlap, tta=tta, two_stage=two_stage,
        box_margin=box_margin, box_threshold=box_threshold, engine=engine, threads=threads)
    bar = Progress.of(progress)
    if workers == 0:  # the plain loop: read, predict, write, one image after the other
        records = []
        for path in bar.bar(files, desc="predicting", unit="images"):
            try:
                image = read_image(path)
            except CrackalError:
                if skip_invalid:
                    continue
                raise
            started = time.perf_counter()
            probs = predictor(image)
            seconds = time.perf_counter() - started
            records.append(write_prediction(out, path, image, probs, threshold, config, gsd, seconds))
        return write_measurements(records, out, threshold, gsd, inputs)
    records = predict_overlapped(predictor, files, out, threshold, config, gsd, skip_invalid, workers, batch_size, bar)
    return write_measurements(records, out, threshold, gsd, inputs)


def _read(path: Path) -> np.ndarray | CrackalError:
    try:
        return read_image(path)
    except CrackalError as exc:
        return exc


def predict_overlapped(predictor: ImagePredictor, files: list[Path], out: Path, threshold: float, config: TrainConfig,
                       gsd: float | None, skip_invalid: bool, workers: int, batch_size: int, progress: Progress) -> list[dict]:
    """Read and decode ahead in ``workers`` threads, predict the tiles of consecutive images
    ``batch_size`` at a time, write behind in ``workers`` threads; the records in file order
    (``seconds``: the wall time between one image's probabilities and the next)."""
    depth = 2 * (batch_size + workers)

    def readable(decoded: Iterator[tuple[Path, Future]]) -> Iterator[tuple[Path, np.ndarray]]:
        for path, future in decoded:
            image = future.result()
            if isinstance(image, CrackalError):
                if skip_invalid:
                    continue
                raise image
            yield path, image

    with ThreadPoolExecutor(workers, thread_name_prefix="crackal-read") as readers, \
            ThreadPoolExecutor(workers, thread_name_prefix="crackal-write") as writers:
        written: deque[Future] = deque()
        records = []
        stream = predictor.stream(readable(ahead(_read, files, readers, depth)), batch_size)
        last = time.perf_counter()
        for path, image, probs in progress.bar(stream, total=len(files), desc="predicting", unit="images"):
            now = time.perf_counter()
            written.append(writers.submit(write_prediction, out, path, image, probs, threshold, config, gsd, now - last))
            last = now
            while len(written) > depth:
                records.append(written.popleft().result())
        records += [future.result() for future in written]
    return records


def write_prediction(out: Path, path: Path, image: np.ndarray, probs: np.ndarray, threshold: float,
                     config: TrainConfig, gsd: float | None, seconds: float) -> dict:
    """Write one image's mask, probability map and overlay; returns its measurement record."""
    class_mask = class_mask_from_probs(probs, threshold)
    write_png(out / "masks" / f"{path.stem}.png", mask_png(class_mask, config.num_classes))
    write_png(out / "probabilities" / f"{path.stem}.png", probability_png(probs))
    write_png(out / "overlays" / f"{path.stem}.png", overlay(image, class_mask, colors=config.class_colors))
    return {"image": path.name, "height": image.shape[0], "width": image.shape[1],
            "seconds": round(seconds, 3), **_flatten(measure_defects(class_mask, config.class_names, gsd))}


def write_measurements(records: list[dict], out: Path, threshold: float, gsd: float | None, inputs: str | Path) -> list[dict]:
    """``measurements.csv`` and ``.json`` of the records (an error when there is none)."""
    if not records:
        raise CrackalError(f"no readable image in {inputs}")
    write_table(records, out / "measurements.csv")
    atomic_write_json({"threshold": threshold, "gsd_m_per_px": gsd, "images": records}, out / "measurements.json")
    return records
