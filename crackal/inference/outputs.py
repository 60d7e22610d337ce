"""Predicting a folder of images with a trained run: masks, probability maps, overlays and
defect measurements (``crackal predict``).

```
OUT/masks/<name>.png          class mask (0/255 for binary models, class indices otherwise)
OUT/probabilities/<name>.png  defect probability x 255
OUT/overlays/<name>.png       the image with each defect class painted in its colour
OUT/measurements.csv / .json  per image: size, seconds, area (px, m^2), crack length and width
```

A GeoTIFF (or a TIFF larger than four windows) is predicted window by window
(``inference.raster``): its mask and probability map are tiled GeoTIFFs ``masks/<name>.tif``,
``probabilities/<name>.tif`` with its georeferencing, its overlay a reduced PNG. With
``defects`` the defect instances, their GeoJSON and the condition summary are written too
(``inference.inspection``).
"""

from __future__ import annotations

import csv
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from torch import nn

from crackal.data.io import list_images, mask_png, read_image, write_png
from crackal.errors import CrackalError, check_options, choose
from crackal.inference.defect_list import DefectList
from crackal.inference.defects import DefectOptions, defects_by_blocks, extract_defects, is_crack_class
from crackal.inference.geo import Georef, check_heading, gps_georef, raster_georef, read_gps
from crackal.inference.measure import measure_defects
from crackal.inference.raster import (
    RASTER_SUFFIXES,
    WindowMap,
    gdal_env,
    is_georeferenced_tiff,
    mask_reader,
    open_raster,
    predict_raster,
    raster_size,
)
from crackal.inference.render import class_mask_from_probs, overlay, probability_png
from crackal.inference.stream import ahead, default_workers, predict_stream
from crackal.inference.two_stage import predict_two_stage
from crackal.models.predict import Engine as NetworkEngine
from crackal.models.predict import predict_image
from crackal.options import SEGMENTATION_ENGINES, SegmentationEngine
from crackal.progress import Progress
from crackal.runs.checkpoint import atomic_write_json, load_detector, load_model, read_checkpoint
from crackal.runs.config import TrainConfig

Predictor = Callable[[np.ndarray], np.ndarray]  # image (H, W, 3) uint8 -> probabilities (C, H, W)
DEFECT_BLOCK = 4096  # a raster's mask is searched for defects in blocks of this size
K = TypeVar("K")  # what a streamed image is known by


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

    def stream(self, images: Iterable[tuple[K, np.ndarray]], batch_size: int) -> Iterator[tuple[K, np.ndarray, np.ndarray]]:
        """``(key, image, probabilities)`` in order; a network's tiles of consecutive images are
        batched together (``predict_stream``)."""
        if self.model is None:
            yield from ((key, image, self(image)) for key, image in images)
        else:
            yield from predict_stream(self.model, images, self.tile_size, self.overlap, self.tta, batch_size)


def check_prediction_options(gsd: float | None, *, defects: bool | DefectOptions = False, heading: float | None = None,
                             segments: str | Path | None = None, chainage: float | None = None,
                             window: int = 2048) -> DefectOptions | None:
    """The options of a folder prediction that do not depend on the run; the defect options
    (None without ``defects``)."""
    check_heading(heading)
    check_options([(gsd is None or gsd > 0, "gsd", f"is the ground sampling distance in metres per pixel and must be > 0, got {gsd}"),
                   (window >= 64, "window", f"must be at least 64 px, got {window}"),
                   (chainage is None or chainage > 0, "chainage", f"must be a positive length in metres, got {chainage}"),
                   (not (segments and chainage), "segments", "and --chainage are two ways to make segments: give one")])
    options = defects if isinstance(defects, DefectOptions) else DefectOptions() if defects else None
    check_options([(options is not None or not (segments or chainage), "segments" if segments else "chainage",
                    "makes a condition summary per segment: add --defects")])
    if segments and options is not None:
        from crackal.inference.condition import read_segments

        read_segments(segments)  # a bad file fails now, not after the prediction
    return options


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
    engine: SegmentationEngine = "torch",
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
    choose(SEGMENTATION_ENGINES, engine, "engine")
    if engine.startswith("onnxruntime"):
        if two_stage:
            raise CrackalError(f"two-stage prediction runs on the PyTorch engine; leave out --engine {engine}")
        from crackal.inference.onnx import OnnxSegmenter, onnx_folder

        folder = onnx_folder(checkpoint)
        int8 = engine == "onnxruntime-int8"
        if int8 and not (folder / "model.int8.onnx").is_file():
            from crackal.inference.quantize import quantize_int8

            quantize_int8(folder)  # calibrated on the run's own training images
        runtime = OnnxSegmenter(folder, threads=threads, int8=int8) if load else None

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
    engine: SegmentationEngine = "torch",
    threads: int | None = None,
    workers: int | None = None,
    batch_size: int = 4,
    defects: bool | DefectOptions = False,
    heading: float | None = None,
    segments: str | Path | None = None,
    chainage: float | None = None,
    window: int = 2048,
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

    ``defects`` (True, or ``DefectOptions``) also writes the defect instances and the condition
    summary (``inference.inspection``): ``defects.csv/.json/.geojson``, ``condition_images.csv``,
    ``condition.md/.html``, ``severity_map.png``; per segment too with ``segments`` (a CSV
    ``image,segment``) or ``chainage`` (bins of that many metres along the photos' GPS track).
    ``heading`` (degrees clockwise from north of the image's top; default the EXIF
    GPSImgDirection) with ``gsd`` places a GPS photo's defects on the map. GeoTIFFs (and TIFFs
    larger than four windows) are read and written in windows of ``window`` px, one after the
    other; their GSD is the geotransform's (in a projected CRS), else ``gsd``.
    """
    files, out = image_files(inputs), Path(out)
    options = check_prediction_options(gsd, defects=defects, heading=heading, segments=segments, chainage=chainage, window=window)
    workers = default_workers() if workers is None else workers
    check_options([(workers >= 0, "workers", f"must be >= 0, got {workers}"),
                   (batch_size >= 1, "batch_size", f"must be >= 1, got {batch_size}")])
    predictor, config, threshold = make_predictor(
        checkpoint, threshold=threshold, tile_size=tile_size, overlap=overlap, tta=tta, two_stage=two_stage,
        box_margin=box_margin, box_threshold=box_threshold, engine=engine, threads=threads)
    bar = Progress.of(progress)
    rasters = [path for path in files if is_raster(path, window)]
    photos = [path for path in files if path not in set(rasters)]
    records: list[dict] = []
    if photos and workers == 0:
        records += predict_one_by_one(predictor, photos, out, threshold, config, gsd, skip_invalid, options, bar)
    elif photos:
        records += predict_overlapped(predictor, photos, out, threshold, config, gsd, skip_invalid, workers, batch_size, bar, options)
    raster_records, georefs = predict_rasters(rasters, out, predictor, config, threshold, gsd, window, overlap, options, bar,
                                              skip_invalid)
    order = {path.name: i for i, path in enumerate(files)}
    records = sorted(records + raster_records, key=lambda r: order[r["image"]])
    return write_measurements(records, out, threshold, gsd, inputs, options=options, files=files, heading=heading,
                              georefs=georefs, segments=segments, chainage=chainage)


def predict_one_by_one(predictor: ImagePredictor, files: list[Path], out: Path, threshold: float, config: TrainConfig,
                       gsd: float | None, skip_invalid: bool, options: DefectOptions | None, progress: Progress) -> list[dict]:
    """The plain loop: read, predict, write, one image after the other."""
    records = []
    for path in progress.bar(files, desc="predicting", unit="images"):
        try:
            image = read_image(path)
        except CrackalError:
            if skip_invalid:
                continue
            raise
        started = time.perf_counter()
        probs = predictor(image)
        seconds = time.perf_counter() - started
        records.append(write_prediction(out, path, image, probs, threshold, config, gsd, seconds, options))
    return records


def _read(path: Path) -> np.ndarray | CrackalError:
    try:
        return read_image(path)
    except CrackalError as exc:
        return exc


def predict_overlapped(predictor: ImagePredictor, files: list[Path], out: Path, threshold: float, config: TrainConfig,
                       gsd: float | None, skip_invalid: bool, workers: int, batch_size: int, progress: Progress,
                       options: DefectOptions | None = None) -> list[dict]:
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
            written.append(writers.submit(write_prediction, out, path, image, probs, threshold, config, gsd, now - last, options))
            last = now
            while len(written) > depth:
                records.append(written.popleft().result())
        records += [future.result() for future in written]
    return records


def write_prediction(out: Path, path: Path, image: np.ndarray, probs: np.ndarray, threshold: float,
                     config: TrainConfig, gsd: float | None, seconds: float, options: DefectOptions | None = None) -> dict:
    """Write one image's mask, probability map and overlay; returns its measurement record (with
    its defect instances under ``"_defects"`` when ``options`` are given)."""
    class_mask = class_mask_from_probs(probs, threshold)
    write_png(out / "masks" / f"{path.stem}.png", mask_png(class_mask, config.num_classes))
    write_png(out / "probabilities" / f"{path.stem}.png", probability_png(probs))
    write_png(out / "overlays" / f"{path.stem}.png", overlay(image, class_mask, colors=config.class_colors))
    record = {"image": path.name, "height": image.shape[0], "width": image.shape[1],
              "seconds": round(seconds, 3), **_flatten(measure_defects(class_mask, config.class_names, gsd))}
    if options is not None:
        record["_defects"] = extract_defects(class_mask, config.class_names, options, gsd)
    return record


def write_measurements(records: list[dict], out: Path, threshold: float, gsd: float | None, inputs: str | Path, *,
                       options: DefectOptions | None = None, files: Iterable[Path] = (), heading: float | None = None,
                       georefs: dict[str, Georef] | None = None, segments: str | Path | None = None,
                       chainage: float | None = None) -> list[dict]:
    """``measurements.csv`` and ``.json`` of the records (an error when there is none); with
    ``options``, the defect tables and condition summary of the records' ``"_defects"`` too
    (photos are placed by their EXIF GPS, rasters by ``georefs``)."""
    if not records:
        raise CrackalError(f"no readable image in {inputs}")
    found: list[tuple[str, Iterable[dict]]] = []  # (image, its defect instances), not copied
    images: list[dict] = []  # per image: size, GSD, time taken (for the condition summary)
    georefs = dict(georefs or {})
    paths = {path.name: path for path in files}
    for record in records:
        image_defects, taken = record.pop("_defects", []), record.pop("_taken", None)
        if options is None:
            continue
        name = record["image"]
        if name not in georefs:
            georefs[name], taken = photo_georef(paths[name], record["height"], record["width"], gsd, heading)
        georef = georefs[name]
        found.append((name, image_defects))
        images.append({"image": name, "height": record["height"], "width": record["width"],
                       "gsd_m": georef.gsd_m if georef.kind == "raster" and georef.gsd_m else gsd,
                       "georeferencing": georef.kind, "taken": taken})
    write_table(records, out / "measurements.csv")
    atomic_write_json({"threshold": threshold, "gsd_m_per_px": gsd, "images": records}, out / "measurements.json")
    if options is not None:
        from crackal.inference.inspection import write_inspection

        write_inspection(out, ({"image": name, **d} for name, image_defects in found for d in image_defects), images,
                         georefs, options, segments=segments, chainage_m=chainage, threshold=threshold)
    return records


def photo_georef(path: Path, height: int, width: int, gsd: float | None, heading: float | None) -> tuple[Georef, str | None]:
    """A photo's ``Georef`` from its EXIF GPS (pixel coordinates when it has none) and the time it was taken."""
    info = read_gps(path)
    if info is None:
        return Georef(width=width, height=height), None
    return gps_georef(info, height, width, gsd, heading), info.get("taken")


def is_raster(path: Path, window: int) -> bool:
    """GeoTIFFs, and TIFFs larger than four windows, take the windowed path."""
    if path.suffix.lower() not in RASTER_SUFFIXES:
        return False
    if is_georeferenced_tiff(path):
        return True
    try:
        height, width = raster_size(path)
    except CrackalError:
        return False
    return height * width > 4 * window * window


def raster_predictor(checkpoint: str | Path, options: dict, *, threads: int | None = None, device: str = "cpu") -> ImagePredictor:
    """``make_predictor``'s prediction of one image (``options``: its keyword arguments), built
    once per Ray actor to predict a raster's windows."""
    return make_predictor(checkpoint, **{**options, "threads": threads, "device": device})[0]


def predict_rasters(rasters: list[Path], out: Path, predictor: Predictor | None, config: TrainConfig, threshold: float,
                    gsd: float | None, window: int, overlap: int, options: DefectOptions | None, progress: Progress,
                    skip_invalid: bool, map_windows: WindowMap | None = None) -> tuple[list[dict], dict[str, Georef]]:
    """Each raster predicted window by window (by ``predictor``, or on Ray through ``map_windows``):
    its record and georeferencing; an unreadable one is left out with ``skip_invalid``."""
    records, georefs = [], {}
    for path in rasters:
        try:
            record, georefs[path.name] = _predict_raster_file(path, out, predictor, config, threshold, gsd, window, overlap,
                                                              options, progress, map_windows=map_windows)
        except CrackalError:
            if skip_invalid:
                continue
            raise
        records.append(record)
    return records, georefs


def _predict_raster_file(path: Path, out: Path, predictor: Predictor | None, config: TrainConfig, threshold: float,
                         gsd: float | None, window: int, overlap: int, options: DefectOptions | None,
                         progress: Progress, map_windows: WindowMap | None = None) -> tuple[dict, Georef]:
    with gdal_env(), open_raster(path) as ds:
        georef = raster_georef(ds) or Georef(width=ds.width, height=ds.height)
    gsd_m = georef.gsd_m or gsd
    georef.gsd_m = gsd_m
    mask_path, prob_path = out / "masks" / f"{path.stem}.tif", out / "probabilities" / f"{path.stem}.tif"
    started = time.perf_counter()
    result = predict_raster(predictor, path, mask_path, prob_path, config.num_classes, threshold, window=window, halo=overlap,
                            colors=config.class_colors, map_windows=map_windows,
                            on_window=lambda done, total: progress.line(f"{path.name}: window {done}/{total}", detail=True))
    seconds = time.perf_counter() - started
    write_png(out / "overlays" / f"{path.stem}.png", result["overlay"])
    height, width = result["height"], result["width"]
    found = DefectList()
    if options is not None:
        with mask_reader(mask_path, config.num_classes) as read:
            defects_by_blocks(read, height, width, config.class_names, options, gsd_m, block=max(window, DEFECT_BLOCK),
                              found=found)
    record: dict = {"image": path.name, "height": height, "width": width, "seconds": round(seconds, 3),
                    "mask": str(mask_path.relative_to(out)), "overview_step": result["overlay_step"]}
    lengths: dict[str, float] = {}  # crack length per class, in one pass over the defects on disk
    if options is not None:
        for d in found:
            if is_crack_class(d["class"]):
                lengths[d["class"]] = lengths.get(d["class"], 0.0) + d["length_px"]
    for index, name in enumerate(config.class_names[1:], start=1):
        area = int(result["counts"][index])
        record[f"{name}_area_px"] = area
        record[f"{name}_area_fraction"] = round(area / (height * width), 6)
        if gsd_m:
            record[f"{name}_area_m2"] = round(area * gsd_m**2, 6)
        if options is not None and is_crack_class(name):
            length = lengths.get(name, 0)
            record[f"{name}_length_px"] = round(length, 1)
            if gsd_m:
                record[f"{name}_length_m"] = round(length * gsd_m, 4)
    record["_defects"] = found
    return record, georef
