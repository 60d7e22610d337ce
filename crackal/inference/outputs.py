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
from collections.abc import Callable
from pathlib import Path

import numpy as np

from crackal.data.io import list_images, mask_png, read_image, write_png
from crackal.errors import CrackalError, check_options
from crackal.inference.defects import DefectOptions, defects_by_blocks, extract_defects, is_crack_class
from crackal.inference.geo import Georef, check_heading, gps_georef, raster_georef, read_gps
from crackal.inference.measure import measure_defects
from crackal.inference.raster import RASTER_SUFFIXES, gdal_env, is_georeferenced_tiff, mask_reader, open_raster, predict_raster, raster_size
from crackal.inference.render import class_mask_from_probs, overlay, probability_png
from crackal.inference.two_stage import predict_two_stage
from crackal.models.predict import predict_image
from crackal.progress import Progress
from crackal.training.checkpoint import atomic_write_json, load_model
from crackal.training.config import TrainConfig
from crackal.training.detection import load_detector

Predictor = Callable[[np.ndarray], np.ndarray]  # image (H, W, 3) uint8 -> probabilities (C, H, W)
DEFECT_BLOCK = 4096  # a raster's mask is searched for defects in blocks of this size


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
    defects: bool | DefectOptions = False,
    heading: float | None = None,
    segments: str | Path | None = None,
    chainage: float | None = None,
    window: int = 2048,
) -> list[dict]:
    """Predict a folder or a single image; writes ``masks/``, ``probabilities/``, ``overlays/``
    and ``measurements.csv/.json`` (area in px, and m^2 when ``gsd`` in metres/pixel is given);
    returns one record per image.

    ``defects`` (True, or ``DefectOptions``) also writes the defect instances and the condition
    summary (``inference.inspection``): ``defects.csv/.json/.geojson``, ``condition_images.csv``,
    ``condition.md/.html``, ``severity_map.png``; per segment too with ``segments`` (a CSV
    ``image,segment``) or ``chainage`` (bins of that many metres along the photos' GPS track).
    ``heading`` (degrees clockwise from north of the image's top; default the EXIF
    GPSImgDirection) with ``gsd`` places a GPS photo's defects on the map. GeoTIFFs (and TIFFs
    larger than four windows) are read and written in windows of ``window`` px; their GSD is
    the geotransform's (in a projected CRS), else ``gsd``.

    The crack threshold defaults to the one chosen on the validation split during training.
    Images larger than ``tile_size`` (default: the run's) are cut into tiles overlapping by
    ``overlap`` px. With ``two_stage`` (a run of ``crackal detect train``) the detector runs
    first and the model segments only its boxes, grown by ``box_margin`` px (boxes scoring below
    ``box_threshold``, default the detector's validation choice, are dropped); the rest is
    background.
    """
    files, out = image_files(inputs), Path(out)
    check_options([(gsd is None or gsd > 0, "gsd", f"is the ground sampling distance in metres per pixel and must be > 0, got {gsd}")])
    model, state = load_model(checkpoint)
    config = TrainConfig.from_dict(state["config"])
    threshold = state.get("threshold", 0.5) if threshold is None else threshold
    tile_size = config.tile_size if tile_size is None else tile_size
    check_options([(0 < threshold < 1, "threshold", f"must be between 0 and 1, got {threshold}")])
    check_tiling(tile_size, overlap)
    check_heading(heading)
    check_options([(window >= 64, "window", f"must be at least 64 px, got {window}"),
                   (chainage is None or chainage > 0, "chainage", f"must be a positive length in metres, got {chainage}"),
                   (not (segments and chainage), "segments", "and --chainage are two ways to make segments: give one")])
    options = defects if isinstance(defects, DefectOptions) else DefectOptions() if defects else None
    check_options([(options is not None or not (segments or chainage), "segments" if segments else "chainage",
                    "makes a condition summary per segment: add --defects")])
    if segments and options is not None:
        from crackal.inference.condition import read_segments

        read_segments(segments)  # a bad file fails now, not after the prediction
    if two_stage:
        predictor = two_stage_predictor(model, config, two_stage, box_margin, box_threshold, tta, tile_size)
    else:
        def predictor(image: np.ndarray) -> np.ndarray:
            return predict_image(model, image, tile_size=tile_size, overlap=overlap, tta=tta)
    records: list[dict] = []
    found: list[dict] = []  # defect instances of every image
    images: list[dict] = []  # per image: size, GSD, time taken (for the condition summary)
    georefs: dict[str, Georef] = {}
    bar = Progress.of(progress)
    for path in bar.bar(files, desc="predicting", unit="images"):
        try:
            if _is_raster(path, window):
                record, image_defects, georef = _predict_raster_file(
                    path, out, predictor, config, threshold, gsd, window, overlap, options, bar)
            else:
                record, image_defects, georef = _predict_image_file(path, out, predictor, config, threshold, gsd, heading, options)
        except CrackalError:
            if skip_invalid:
                continue
            raise
        records.append(record)
        if options is not None:
            found += [{"image": path.name, **d} for d in image_defects]
            georefs[path.name] = georef
            images.append({"image": path.name, "height": record["height"], "width": record["width"],
                           "gsd_m": georef.gsd_m if georef.kind == "raster" and georef.gsd_m else gsd,
                           "georeferencing": georef.kind, "taken": record.pop("_taken", None)})
    if not records:
        raise CrackalError(f"no readable image in {inputs}")
    write_table(records, out / "measurements.csv")
    atomic_write_json({"threshold": threshold, "gsd_m_per_px": gsd, "images": records}, out / "measurements.json")
    if options is not None:
        from crackal.inference.inspection import write_inspection

        write_inspection(out, found, images, georefs, options, segments=segments, chainage_m=chainage, threshold=threshold)
    return records


def _is_raster(path: Path, window: int) -> bool:
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


def _predict_image_file(path: Path, out: Path, predictor: Predictor, config: TrainConfig, threshold: float, gsd: float | None,
                        heading: float | None, options: DefectOptions | None) -> tuple[dict, list[dict], Georef]:
    image = read_image(path)
    started = time.perf_counter()
    probs = predictor(image)
    seconds = time.perf_counter() - started
    class_mask = class_mask_from_probs(probs, threshold)
    write_png(out / "masks" / f"{path.stem}.png", mask_png(class_mask, config.num_classes))
    write_png(out / "probabilities" / f"{path.stem}.png", probability_png(probs))
    write_png(out / "overlays" / f"{path.stem}.png", overlay(image, class_mask, colors=config.class_colors))
    record = {"image": path.name, "height": image.shape[0], "width": image.shape[1],
              "seconds": round(seconds, 3), **_flatten(measure_defects(class_mask, config.class_names, gsd))}
    if options is None:
        return record, [], Georef()
    found = extract_defects(class_mask, config.class_names, options, gsd)
    info = read_gps(path)
    georef = Georef(width=image.shape[1], height=image.shape[0])
    if info is not None:
        georef = gps_georef(info, image.shape[0], image.shape[1], gsd, heading)
        record["_taken"] = info.get("taken")
    return record, found, georef


def _predict_raster_file(path: Path, out: Path, predictor: Predictor, config: TrainConfig, threshold: float, gsd: float | None,
                         window: int, overlap: int, options: DefectOptions | None,
                         progress: Progress) -> tuple[dict, list[dict], Georef]:
    with gdal_env(), open_raster(path) as ds:
        georef = raster_georef(ds) or Georef(width=ds.width, height=ds.height)
    gsd_m = georef.gsd_m or gsd
    georef.gsd_m = gsd_m
    mask_path, prob_path = out / "masks" / f"{path.stem}.tif", out / "probabilities" / f"{path.stem}.tif"
    started = time.perf_counter()
    result = predict_raster(predictor, path, mask_path, prob_path, config.num_classes, threshold, window=window, halo=overlap,
                            colors=config.class_colors,
                            on_window=lambda done, total: progress.line(f"{path.name}: window {done}/{total}", detail=True))
    seconds = time.perf_counter() - started
    write_png(out / "overlays" / f"{path.stem}.png", result["overlay"])
    height, width = result["height"], result["width"]
    found: list[dict] = []
    if options is not None:
        with mask_reader(mask_path, config.num_classes) as read:
            found = defects_by_blocks(read, height, width, config.class_names, options, gsd_m, block=max(window, DEFECT_BLOCK))
    record: dict = {"image": path.name, "height": height, "width": width, "seconds": round(seconds, 3),
                    "mask": str(mask_path.relative_to(out)), "overview_step": result["overlay_step"]}
    for index, name in enumerate(config.class_names[1:], start=1):
        area = int(result["counts"][index])
        record[f"{name}_area_px"] = area
        record[f"{name}_area_fraction"] = round(area / (height * width), 6)
        if gsd_m:
            record[f"{name}_area_m2"] = round(area * gsd_m**2, 6)
        if options is not None and is_crack_class(name):
            length = sum(d["length_px"] for d in found if d["class"] == name)
            record[f"{name}_length_px"] = round(length, 1)
            if gsd_m:
                record[f"{name}_length_m"] = round(length * gsd_m, 4)
    return record, found, georef
