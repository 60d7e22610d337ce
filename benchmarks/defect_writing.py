"""Writing defects at survey scale: the defect search and the outputs of `crackal predict --defects`
(tables, JSON, GeoJSON, condition summary, severity map) for N synthetic defects.

    .venv/bin/python benchmarks/defect_writing.py [--counts 1000 5000 20000] [--cell 96] [--networks 0.15]

No model: a synthetic class mask holds N defects, one in each ``--cell`` px cell of a square grid
(by default 96 px: 55 % straight cracks 30-76 px long, 15 % crack networks of four crossing
cracks, 30 % elliptic potholes; crack width 3 or 5 px; ``--networks`` sets the networks' share of
the 70 % of cracks, each of max(4, cell / 24) crossing cracks: larger cells and more networks
make heavier records, longer centre lines), written as a tiled GeoTIFF (UTM 33N, 2 mm pixels). As
`crackal predict --defects` does on a raster, the defects are found in the mask GeoTIFF in 4096 px
blocks into a ``DefectList`` ("find"), then ``write_inspection`` writes the outputs from it
("write"). Each count runs in a fresh process; wall seconds, process CPU seconds, defects per
second and milliseconds per defect. Linear scaling: the time per defect stays about constant
from 1,000 to 20,000. Target: writing >= 500 defects/s. The table goes to
docs/benchmarks/defect_writing.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np  # noqa: E402
from _common import hardware, write_docs  # noqa: E402

CLASSES = ["background", "crack", "pothole"]


def synthetic_mask(count: int, seed: int = 0, cell_px: int = 96, networks: float = 0.15):
    """A class mask with ``count`` defects, one per ``cell_px`` px cell (see the module docstring)."""
    import numpy as np
    from scipy import ndimage
    from skimage.draw import ellipse, line

    rng = np.random.default_rng(seed)
    columns = int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / columns))
    size = cell_px
    mask = np.zeros((rows * size, columns * size), np.uint8)
    for k in range(count):
        r0, c0 = (k // columns) * size, (k % columns) * size
        cell = np.zeros((size, size), bool)
        kind = rng.random()
        if kind < 0.7:
            for _ in range(1 if kind < 0.7 - networks else max(4, size // 24)):
                angle, length = rng.uniform(0, np.pi), rng.uniform(30, size - 20)
                cr, cc = size / 2 + rng.uniform(-8, 8), size / 2 + rng.uniform(-8, 8)
                dr, dc = np.sin(angle) * length / 2, np.cos(angle) * length / 2
                cell[line(int(cr - dr), int(cc - dc), int(cr + dr), int(cc + dc))] = True
            cell = ndimage.binary_dilation(cell, iterations=int(rng.integers(1, 3)))
            mask[r0 : r0 + size, c0 : c0 + size][cell] = 1
        else:
            cell[ellipse(size // 2, size // 2, rng.uniform(6, size / 3), rng.uniform(6, size / 3), rotation=rng.uniform(0, np.pi),
                         shape=cell.shape)] = True
            mask[r0 : r0 + size, c0 : c0 + size][cell] = 2
    return mask


def write_mask(mask, path: Path) -> None:
    import rasterio
    from rasterio.transform import from_origin

    profile = {"driver": "GTiff", "height": mask.shape[0], "width": mask.shape[1], "count": 1, "dtype": "uint8",
               "tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "deflate", "crs": "EPSG:32633",
               "transform": from_origin(500000.0, 4200000.0, 0.002, 0.002)}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(mask, 1)


def child(count: int, cell_px: int, networks: float) -> None:
    """One count in this process, as JSON: what ``crackal predict --defects`` does after the prediction."""
    from crackal.inference.defect_list import DefectList
    from crackal.inference.defects import DefectOptions, defects_by_blocks
    from crackal.inference.geo import raster_georef
    from crackal.inference.inspection import write_inspection
    from crackal.inference.outputs import DEFECT_BLOCK
    from crackal.inference.raster import gdal_env, mask_reader, open_raster

    with tempfile.TemporaryDirectory(prefix="defect_writing") as work:
        raster = Path(work) / "mask.tif"
        mask = synthetic_mask(count, cell_px=cell_px, networks=networks)
        height, width = mask.shape
        write_mask(mask, raster)
        del mask
        with gdal_env(), open_raster(raster) as ds:
            georef = raster_georef(ds)
        options, found = DefectOptions(), DefectList()
        wall, cpu = time.perf_counter(), time.process_time()
        with mask_reader(raster, len(CLASSES)) as read:
            defects_by_blocks(read, height, width, CLASSES, options, georef.gsd_m, block=DEFECT_BLOCK, found=found)
        find_wall, find_cpu = time.perf_counter() - wall, time.process_time() - cpu
        images = [{"image": raster.name, "height": height, "width": width, "gsd_m": georef.gsd_m, "georeferencing": "raster"}]
        wall, cpu = time.perf_counter(), time.process_time()
        write_inspection(Path(work) / "out", ({"image": raster.name, **d} for d in found), images, {raster.name: georef},
                         options, threshold=0.5)
        write_wall, write_cpu = time.perf_counter() - wall, time.process_time() - cpu
        size = sum(p.stat().st_size for p in (Path(work) / "out").iterdir())
        record_kb = (Path(work) / "out" / "defects.json").stat().st_size / 1000 / max(1, len(found))
    print(json.dumps({"defects": len(found), "megapixels": round(height * width / 1e6, 1),
                      "find_s": round(find_wall, 2), "find_cpu_s": round(find_cpu, 2),
                      "find_defects_per_s": round(len(found) / find_wall, 1),
                      "write_s": round(write_wall, 2), "write_cpu_s": round(write_cpu, 2),
                      "write_defects_per_s": round(len(found) / write_wall, 1),
                      "write_ms_per_defect": round(1000 * write_wall / len(found), 3),
                      "find_ms_per_defect": round(1000 * find_wall / len(found), 3),
                      "outputs_mb": round(size / 1e6, 1), "defects_json_kb_per_defect": round(record_kb, 2)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--cell", type=int, default=96, help="px a side of each defect's cell")
    parser.add_argument("--networks", type=float, default=0.15, help="share of crack networks (of the 0.7 that are cracks)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--no-docs", action="store_true", help="print the table, leave the docs page alone")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.cell, args.networks)
        return
    rows = []
    started = time.perf_counter()
    for count in args.counts:
        command = [sys.executable, __file__, "--child", str(count), "--cell", str(args.cell), "--networks", str(args.networks)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            print(result.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{count} defects failed")
        rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]), flush=True)
    per_defect = [r["write_ms_per_defect"] for r in rows]
    slowest = min(r["write_defects_per_s"] for r in rows)
    # linear scaling: seconds = fixed + slope x defects (least squares), and the cost of each step up
    fixed = slope = None
    if len(rows) > 1:
        slope, fixed = np.polyfit([r["defects"] for r in rows], [r["write_s"] for r in rows], 1)
    steps = [1000 * (b["write_s"] - a["write_s"]) / (b["defects"] - a["defects"]) for a, b in zip(rows, rows[1:])]
    summary = (f"Writing: {slowest:.0f} defects/s at the slowest (target >= 500); {min(per_defect):.2f} to "
               f"{max(per_defect):.2f} ms per defect from {rows[0]['defects']:,} to {rows[-1]['defects']:,} defects "
               + (f"(least-squares line: {fixed:.2f} s fixed, matplotlib's import and the figure, + {1000 * slope:.3f} ms "
                  f"per defect; each step up costs {', '.join(f'{s:.3f}' for s in steps)} ms per added defect)"
                  if slope is not None else "") + ". Finding: "
               f"{min(r['find_defects_per_s'] for r in rows):.0f}-{max(r['find_defects_per_s'] for r in rows):.0f} defects/s. "
               f"Wall time {time.perf_counter() - started:.0f} s.")
    print(summary)
    if not args.no_docs:
        heavy = (args.cell, args.networks) != (96, 0.15)
        print(write_docs("defect_writing", rows, summary, hardware=hardware(),
                         block=f"cell {args.cell}, networks {args.networks}" if heavy else None))


if __name__ == "__main__":
    main()
