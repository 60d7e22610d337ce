"""Huge rasters: peak memory and speed of `crackal predict --defects` on synthetic GeoTIFFs.

    .venv/bin/python benchmarks/large_raster.py [--sizes 5000 20000] [--window 2048] [--train-minutes 2]

A crack texture (a 1024 x 1024 synthetic asphalt image with cracks) is tiled over square
GeoTIFFs of each size (3 x uint8, 512 x 512 tiles, deflate, UTM 33N, 2 mm pixels). The default
model (``crackal train``'s: the U-Net on an ImageNet EfficientNet-Lite0 encoder), trained for
``--train-minutes`` on 40 synthetic images so its masks look like cracks (the weights do not
change the memory or the speed of a forward pass), predicts each raster window by window
into tiled GeoTIFFs and the defects are extracted block by block,
each size in a fresh process. Printed per size: peak resident memory (ru_maxrss), prediction
megapixels per second, defect extraction time, defects found. Target: peak under 2 GB on
20000 x 20000, and at most 1.2 times the peak on 5000 x 5000. The table goes to
docs/benchmarks/large_raster.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from _common import ROOT, hardware, write_docs  # noqa: E402

TEXTURE = 1024


def train_model(work: Path, minutes: float) -> Path:
    from crackal import api
    from crackal.data.synth import SynthOptions, write_synthetic_dataset

    run = work / "run"
    if (run / "checkpoints" / "best.pt").is_file():
        return run
    data = write_synthetic_dataset(work / "synth", count=40, size=256, seed=0, options=SynthOptions(crack_free_fraction=0.1))
    api.train(data, run, val=4, test=0, epochs=200, crop_size=256, time_limit_min=minutes, seed=0, progress=False)
    return run


def write_raster(path: Path, size: int) -> Path:
    """A square GeoTIFF of ``size`` px, the crack texture tiled over it, written in windows."""
    if path.is_file():
        return path
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    from crackal.data.synth import SynthOptions, synth_sample

    texture, _ = synth_sample(np.random.default_rng(1), (TEXTURE, TEXTURE), SynthOptions(crack_free_fraction=0.0, max_cracks=6))
    profile = {"driver": "GTiff", "height": size, "width": size, "count": 3, "dtype": "uint8", "tiled": True,
               "blockxsize": 512, "blockysize": 512, "compress": "deflate", "BIGTIFF": "IF_SAFER",
               "crs": "EPSG:32633", "transform": from_origin(500000.0, 4200000.0, 0.002, 0.002)}
    band = 2048  # rows written at once
    tiled_row = np.tile(texture, (band // TEXTURE, size // TEXTURE + 1, 1))[:, :size]
    tmp = path.with_suffix(".part.tif")
    with rasterio.Env(GDAL_CACHEMAX=128), rasterio.open(tmp, "w", **profile) as dst:
        for top in range(0, size, band):
            rows = min(band, size - top)
            dst.write(tiled_row[:rows].transpose(2, 0, 1), window=Window(0, top, size, rows))
    tmp.rename(path)
    return path


def child(run: Path, raster: Path, out: Path, window: int, defects: bool) -> None:
    """One size in this process: what ``crackal predict --defects`` does, in its two phases
    (prediction into GeoTIFFs, then defects from the mask GeoTIFF block by block and the
    outputs), with the peak memory after each, as JSON."""
    from crackal import api
    from crackal.inference.defect_list import DefectList
    from crackal.inference.defects import DefectOptions, defects_by_blocks
    from crackal.inference.geo import raster_georef
    from crackal.inference.inspection import write_inspection
    from crackal.inference.outputs import DEFECT_BLOCK
    from crackal.inference.raster import gdal_env, mask_reader, open_raster

    def peak_mb() -> float:
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    started = time.perf_counter()
    records = api.predict(run, raster, out, window=window, progress=False)
    predicted = time.perf_counter()
    height, width = records[0]["height"], records[0]["width"]
    result = {"megapixels": round(height * width / 1e6, 1), "predict_seconds": round(predicted - started, 1),
              "megapixels_per_second": round(height * width / 1e6 / (predicted - started), 3),
              "peak_rss_predict_mb": peak_mb()}
    if defects:
        with gdal_env(), open_raster(raster) as ds:
            georef = raster_georef(ds)
        options, found = DefectOptions(), DefectList()
        with mask_reader(out / "masks" / f"{raster.stem}.tif", 2) as read:
            defects_by_blocks(read, height, width, ["background", "crack"], options, georef.gsd_m,
                              block=max(window, DEFECT_BLOCK), found=found)
        extracted = time.perf_counter()
        images = [{"image": raster.name, "height": height, "width": width, "gsd_m": georef.gsd_m, "georeferencing": "raster"}]
        write_inspection(out, ({"image": raster.name, **d} for d in found), images, {raster.name: georef}, options)
        result.update(defects=len(found), defects_seconds=round(extracted - predicted, 1),
                      outputs_seconds=round(time.perf_counter() - extracted, 1))
    result.update(total_seconds=round(time.perf_counter() - started, 1), peak_rss_mb=peak_mb())
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--window", type=int, default=2048)
    parser.add_argument("--train-minutes", type=float, default=2.0)
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench_large_raster")
    parser.add_argument("--no-defects", action="store_true", help="prediction only")
    parser.add_argument("--keep", action="store_true", help="keep the rasters and outputs")
    parser.add_argument("--child", nargs=3, metavar=("RUN", "RASTER", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), Path(args.child[2]), args.window, not args.no_defects)
        return

    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    run = train_model(args.work, args.train_minutes)
    rows = []
    for size in args.sizes:
        raster = write_raster(args.work / f"raster_{size}.tif", size)
        out = args.work / f"pred_{size}"
        command = [sys.executable, __file__, "--child", str(run), str(raster), str(out), "--window", str(args.window)]
        if args.no_defects:
            command.append("--no-defects")
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            print(result.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{size} x {size} failed")
        row = {"raster": f"{size} x {size}", **json.loads(result.stdout.strip().splitlines()[-1])}
        rows.append(row)
        print(json.dumps(row))
        if not args.keep:
            raster.unlink()
            for path in sorted(out.rglob("*.tif")):
                path.unlink()
    epochs = len(json.loads((run / "metrics.json").read_text())["history"])
    model = json.loads((run / "config.json").read_text())
    model = f"{model['arch']}, encoder {model.get('encoder')}" if model.get("encoder") else model["arch"]
    small, large = rows[0], rows[-1]
    ratio = large["peak_rss_mb"] / small["peak_rss_mb"]
    verdict = (f"peak {large['peak_rss_mb']:.0f} MB on {large['raster']} against {small['peak_rss_mb']:.0f} MB on "
               f"{small['raster']}: ratio {ratio:.2f} (target <= 1.2, and under 2,048 MB)")
    print(verdict)
    note = (f"{verdict}. Prediction {large['megapixels_per_second']:.2f} Mpx/s on {large['raster']}. Window "
            f"{args.window} px, the default model ({model}; {epochs} epochs on 40 synthetic images), "
            f"defects extracted block by block (4096 px blocks); wall time {time.perf_counter() - started:.0f} s.")
    write_docs("large_raster", rows, note, hardware=hardware())


if __name__ == "__main__":
    main()
