"""Rasters of any size (GeoTIFF orthomosaics): prediction window by window with rasterio.

The input is read in windows of ``window`` px (plus the tile overlap on each side for
context, cut off again), each window is predicted with the usual tiling, and its core is
written into two tiled (512 x 512), deflate-compressed GeoTIFFs with the input's CRS and
geotransform: the mask (0/255 for a binary model, class indices otherwise) and the defect
probability x 255. A reduced overlay (at most ``overview`` px a side) is built on the way.
Memory holds one window, whatever the raster's size. Images of more than 8 bits per sample
are scaled to 8 bits by one stretch for the whole raster (its 0.1th and 99.9th
percentiles, from a reduced read), so windows match; pixels the raster marks as nodata
are background.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from crackal.data.io import STRETCH_PERCENTILES, mask_png
from crackal.errors import CrackalError
from crackal.inference.render import class_mask_from_probs, overlay, probability_png

RASTER_SUFFIXES = (".tif", ".tiff")
GDAL_CACHE_MB = 128  # GDAL's block cache: bounded, whatever the raster
OUTPUT_BLOCK = 512


@contextmanager
def gdal_env():
    """rasterio's environment with a bounded block cache; a TIFF without georeferencing is no
    cause for a warning (it is read and written in pixel coordinates)."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        yield


def open_raster(path: str | Path):
    """An open rasterio dataset, or a ``CrackalError`` saying the file is not a raster."""
    import rasterio
    from rasterio.errors import RasterioIOError

    try:
        return rasterio.open(path)
    except RasterioIOError as exc:
        raise CrackalError(f"cannot read {path} as a raster: {exc}") from None


def is_georeferenced_tiff(path: str | Path) -> bool:
    """Whether a file is a TIFF with a CRS or a geotransform (a GeoTIFF)."""
    if Path(path).suffix.lower() not in RASTER_SUFFIXES:
        return False
    try:
        with gdal_env(), open_raster(path) as ds:
            return ds.crs is not None or not ds.transform.is_identity
    except CrackalError:
        return False


def raster_size(path: str | Path) -> tuple[int, int]:
    """``(height, width)`` of a raster from its header."""
    with gdal_env(), open_raster(path) as ds:
        return ds.height, ds.width


def _bands(ds) -> list[int]:
    return [1, 2, 3] if ds.count >= 3 else [1, 1, 1]


def _stretch(ds) -> tuple[float, float] | None:
    """One linear stretch (lo, hi) for a raster of more than 8 bits per sample, from a reduced read."""
    if ds.dtypes[0] == "uint8":
        return None
    from rasterio.enums import Resampling

    scale = max(1.0, (ds.height * ds.width / 1_000_000) ** 0.5)
    shape = (3, max(1, int(ds.height / scale)), max(1, int(ds.width / scale)))
    sample = ds.read(_bands(ds), out_shape=shape, resampling=Resampling.nearest, masked=True).astype(np.float64)
    values = sample.compressed() if np.ma.isMaskedArray(sample) else sample.ravel()
    values = values[np.isfinite(values)]
    if not values.size:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(values, STRETCH_PERCENTILES))
    if not hi > lo:
        lo, hi = float(values.min()), float(values.max())
    return lo, (hi if hi > lo else lo + 1.0)


def read_rgb(ds, window, stretch: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray]:
    """``(h, w, 3) uint8`` pixels of a window and its valid-data mask ``(h, w) bool``."""
    data = ds.read(_bands(ds), window=window)
    valid = ds.read_masks(1, window=window) > 0
    if stretch is None:
        rgb = data.astype(np.uint8, copy=False)
    else:
        lo, hi = stretch
        scaled = (data.astype(np.float32) - lo) * (255.0 / (hi - lo))
        rgb = np.clip(np.nan_to_num(scaled), 0, 255).round().astype(np.uint8)
    return np.ascontiguousarray(rgb.transpose(1, 2, 0)), valid


@dataclass(frozen=True)
class WindowSpec:
    """What a window's prediction needs besides the model: the raster's size, the window and its
    halo, the one 8-bit stretch of the raster, the threshold, the overview's step."""

    height: int
    width: int
    window: int
    halo: int
    stretch: tuple[float, float] | None
    num_classes: int
    threshold: float
    step: int
    colors: object = None


def predict_window(ds, predict: Callable[[np.ndarray], np.ndarray], r0: int, c0: int, spec: WindowSpec) -> dict:
    """The outputs of the window at (``r0``, ``c0``) of an open raster: its core's mask and
    probability (as written into the GeoTIFFs), its pixel count per class and its part of the
    reduced overlay (placed at ``(r0 + oy) // step``, ``(c0 + ox) // step``)."""
    from rasterio.windows import Window

    r1, c1 = min(r0 + spec.window, spec.height), min(c0 + spec.window, spec.width)
    wr0, wc0 = max(0, r0 - spec.halo), max(0, c0 - spec.halo)
    wr1, wc1 = min(spec.height, r1 + spec.halo), min(spec.width, c1 + spec.halo)
    rgb, valid = read_rgb(ds, Window(wc0, wr0, wc1 - wc0, wr1 - wr0), spec.stretch)
    probs = predict(rgb)
    core = (slice(r0 - wr0, r1 - wr0), slice(c0 - wc0, c1 - wc0))
    probs = probs[:, core[0], core[1]]
    valid = valid[core]
    if not valid.all():
        probs = probs.copy()
        probs[:, ~valid] = 0.0
        probs[0, ~valid] = 1.0
    classes = class_mask_from_probs(probs, spec.threshold)
    counts = np.bincount(classes.ravel(), minlength=max(spec.num_classes, 256))[: max(spec.num_classes, 256)]
    # the reduced overlay: every step-th pixel of the core, from the first on the grid
    step = spec.step
    oy, ox = (-r0) % step, (-c0) % step
    sub = overlay(rgb[core][oy::step, ox::step], classes[oy::step, ox::step], colors=spec.colors)
    return {"r0": r0, "c0": c0, "mask": mask_png(classes, spec.num_classes), "probability": probability_png(probs),
            "counts": counts, "overlay": sub, "oy": oy, "ox": ox}


WindowMap = Callable[[str, list[tuple[int, int]], WindowSpec], Iterable[dict]]


def predict_raster(
    predict: Callable[[np.ndarray], np.ndarray] | None,
    source: str | Path,
    mask_path: str | Path,
    probability_path: str | Path,
    num_classes: int,
    threshold: float,
    *,
    window: int = 2048,
    halo: int = 64,
    overview: int = 2048,
    colors=None,
    on_window: Callable[[int, int], None] | None = None,
    map_windows: WindowMap | None = None,
) -> dict:
    """Predict a raster window by window (see the module docstring); ``predict`` maps an
    ``(h, w, 3) uint8`` window to class probabilities ``(C, h, w)``. Returns the raster's
    size, the pixel count of each class and the reduced overlay ``(H', W', 3)``.

    ``map_windows(source, starts, spec)`` (instead of ``predict``) yields the ``predict_window``
    outputs of the windows starting at ``starts`` in any order, computed elsewhere (Ray tasks:
    ``crackal.scale.jobs.raster_windows_ray``); this process writes them."""
    import rasterio
    from rasterio.windows import Window

    if window < 64:
        raise CrackalError(f"--window must be at least 64 px, got {window}")
    with gdal_env(), open_raster(source) as ds:
        height, width = ds.height, ds.width
        stretch = _stretch(ds)
        profile = {"driver": "GTiff", "height": height, "width": width, "count": 1, "dtype": "uint8", "tiled": True,
                   "blockxsize": OUTPUT_BLOCK, "blockysize": OUTPUT_BLOCK, "compress": "deflate", "BIGTIFF": "IF_SAFER"}
        if ds.crs is not None:
            profile["crs"] = ds.crs
        profile["transform"] = ds.transform
        step = max(1, int(np.ceil(max(height, width) / overview)))
        small = np.zeros(((height + step - 1) // step, (width + step - 1) // step, 3), np.uint8)
        counts = np.zeros(max(num_classes, 256), np.int64)
        Path(mask_path).parent.mkdir(parents=True, exist_ok=True)
        Path(probability_path).parent.mkdir(parents=True, exist_ok=True)
        starts = [(r, c) for r in range(0, height, window) for c in range(0, width, window)]
        spec = WindowSpec(height, width, window, halo, stretch, num_classes, threshold, step, colors)
        if map_windows is not None:
            results = map_windows(str(source), starts, spec)
        else:
            assert predict is not None
            results = (predict_window(ds, predict, r0, c0, spec) for r0, c0 in starts)
        with rasterio.open(mask_path, "w", **profile) as mask_out, rasterio.open(probability_path, "w", **profile) as prob_out:
            for done, result in enumerate(results):
                r0, c0 = result["r0"], result["c0"]
                r1, c1 = min(r0 + window, height), min(c0 + window, width)
                counts += result["counts"]
                target = Window(c0, r0, c1 - c0, r1 - r0)
                mask_out.write(result["mask"], 1, window=target)
                prob_out.write(result["probability"], 1, window=target)
                sub, oy, ox = result["overlay"], result["oy"], result["ox"]
                small[(r0 + oy) // step : (r0 + oy) // step + sub.shape[0], (c0 + ox) // step : (c0 + ox) // step + sub.shape[1]] = sub
                if on_window is not None:
                    on_window(done + 1, len(starts))
    return {"height": height, "width": width, "counts": counts[:num_classes].tolist(), "overlay": small, "overlay_step": step}


def mask_reader(mask_path: str | Path, num_classes: int):
    """A context manager giving ``read(r0, r1, c0, c1)`` -> class indices of a mask GeoTIFF
    written by ``predict_raster`` (255 -> 1 for a binary model)."""
    from rasterio.windows import Window

    @contextmanager
    def reader():
        with gdal_env(), open_raster(mask_path) as ds:
            def read(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
                values = ds.read(1, window=Window(c0, r0, c1 - c0, r1 - r0))
                return (values > 0).astype(np.uint8) if num_classes == 2 else values

            yield read

    return reader()
