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
from collections.abc import Callable
from pathlib import Path

import numpy as np

from crackal.data.io import list_images, mask_png, read_image, write_png
from crackal.errors import CrackalError, check_options, choose
from crackal.inference.measure import measure_defects
from crackal.inference.render import class_mask_from_probs, overlay, probability_png
from crackal.inference.two_stage import predict_two_stage
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
) -> tuple[Predictor, TrainConfig, float]:
    """The prediction of one image as a function (image -> probabilities), with the run's config
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

        def predictor(image: np.ndarray) -> np.ndarray:
            return predict_image(runtime, image, tile_size=tile_size, overlap=overlap, tta=tta)

        return predictor, config, threshold
    model = load_model(checkpoint, device)[0] if load else None
    if two_stage:
        if not load:
            return (lambda image: image), config, threshold
        return two_stage_predictor(model, config, two_stage, box_margin, box_threshold, tta, tile_size), config, threshold

    def predict(image: np.ndarray) -> np.ndarray:
        return predict_image(model, image, tile_size=tile_size, overlap=overlap, tta=tta)

    return predict, config, threshold


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
    """
    files, out = image_files(inputs), Path(out)
    check_prediction_options(gsd)
    predictor, config, threshold = make_predictor(
        checkpoint, threshold=threshold, tile_size=tile_size, overlap=overlap, tta=tta, two_stage=two_stage,
        box_margin=box_margin, box_threshold=box_threshold, engine=engine, threads=threads)
    records = []
    for path in Progress.of(progress).bar(files, desc="predicting", unit="images"):
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
