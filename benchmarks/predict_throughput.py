"""Prediction throughput on one machine: images/s of `crackal predict` for the plain loop, the
overlapped loader, ONNX Runtime, and Ray with local actors, side by side in one run.

    PYTHONPATH=. .venv/bin/python benchmarks/predict_throughput.py [--small 200] [--large 10] [--run RUN]

Two sets: `--small` CrackForest-sized images (320 x 480, whole-image forward passes) and
`--large` 2000 x 1500 survey photos (tiled, 512 px tiles overlapping by 64 px). The model is
`--run` (default: the compact U-Net, 16 channels, depth 4, trained one epoch on synthetic
data: speed does not depend on the weights); the images are synthetic crack images written as
PNG. The first configuration is the plain loop with PNGs written at PIL's default zlib level,
as prediction ran when issue 19 asked for 1.3x (``write_png`` now uses level 1). Each
configuration predicts the whole set into a fresh folder (masks, probability maps, overlays,
measurements) after one warm-up image; figures are images per second over the set.
The tables go to docs/benchmarks/predict_throughput.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import torch  # noqa: E402
from _common import hardware, write_docs  # noqa: E402

from crackal import api  # noqa: E402

CONFIGS = {
    "PyTorch, plain loop as the issue found it (PNG level 6)": {"workers": 0, "png_level": 6},
    "PyTorch, plain loop (before)": {"workers": 0},
    "PyTorch, overlapped loader": {"workers": 2},
    "ONNX Runtime, overlapped loader": {"workers": 2, "engine": "onnxruntime"},
    "Ray, 2 local actors (PyTorch)": {"ray": "local", "ray_actors": 2},
}


def make_images(folder: Path, count: int, size: str, seed: int) -> Path:
    if not (folder / "images").is_dir() or len(list((folder / "images").iterdir())) != count:
        shutil.rmtree(folder, ignore_errors=True)
        api.synth(folder, count=count, size=size, seed=seed)
    return folder / "images"


def rate(run: Path, images: Path, out: Path, warm: Path, options: dict) -> float:
    from crackal.data import io

    options = dict(options)
    io.PNG_LEVEL = options.pop("png_level", 1)
    try:
        api.predict(run, warm, out / "warm", progress=False, **options)  # warm-up: model load, export, Ray start
        started = time.perf_counter()
        records = api.predict(run, images, out / "all", progress=False, **options)
        seconds = time.perf_counter() - started
    finally:
        io.PNG_LEVEL = 1
    shutil.rmtree(out, ignore_errors=True)
    return len(records) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=200, help="CrackForest-sized images (320 x 480)")
    parser.add_argument("--large", type=int, default=10, help="2000 x 1500 images")
    parser.add_argument("--run", type=Path, default=None, help="a trained run (default: a one-epoch compact U-Net)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "crackal_throughput")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()

    import ray

    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}})
    work = args.work
    run = args.run
    if run is None:
        run = work / "run"
        if not (run / "checkpoints" / "best.pt").is_file():
            shutil.rmtree(run, ignore_errors=True)
            data = api.synth(work / "train", count=8, size=128, seed=0)
            api.train(data, run, val=1, test=1, epochs=1, crop_size=64, batch_size=4, progress=False)
    shutil.rmtree(run / "onnx", ignore_errors=True)
    api.export(run)
    sets = [(f"{args.small} images, 320 x 480", make_images(work / "small", args.small, "320x480", 1)),
            (f"{args.large} images, 2000 x 1500", make_images(work / "large", args.large, "1500x2000", 2))]
    rows = []
    for label, images in sets:
        warm = work / "warm" / label.split()[0]
        warm.mkdir(parents=True, exist_ok=True)
        first = sorted(images.iterdir())[0]
        shutil.copy(first, warm / first.name)
        row: dict = {"images": label}
        for name, options in CONFIGS.items():
            row[name] = rate(run, images, work / "out", warm, options)
            print(label, "|", name, f"{row[name]:.2f} images/s", flush=True)
        base = row["PyTorch, plain loop (before)"]
        row["overlapped / plain"] = row["PyTorch, overlapped loader"] / base
        row["overlapped / as found"] = row["PyTorch, overlapped loader"] / row[next(iter(CONFIGS))]
        row["ONNX Runtime / PyTorch (both overlapped)"] = row["ONNX Runtime, overlapped loader"] / row["PyTorch, overlapped loader"]
        rows.append(row)
    ray.shutdown()
    header = list(rows[0])
    table = (header, [[row[k] if isinstance(row[k], str) else round(row[k], 3) for k in header] for row in rows])
    for line in [" | ".join(header), *(" | ".join(str(v) for v in r) for r in table[1])]:
        print(line)
    if not args.no_docs:
        page = write_docs("predict_throughput", "Images per second of `crackal predict` (masks, probability maps, "
                          "overlays and measurements written), each configuration on the same images in one run.",
                          table, hardware=f"{hardware()}, {os.cpu_count()} CPUs, torch {torch.get_num_threads()} threads")
        print(f"wrote {page}")


if __name__ == "__main__":
    main()
