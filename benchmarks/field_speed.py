"""Field speed against the machine's limit: one 4000x3000 survey frame through the default model
with PyTorch, ONNX Runtime float32 and ONNX Runtime int8, in GFLOPs, seconds, achieved GFLOP/s
and the share of the machine's measured peak; MC-Dropout T=20 (trunk once, head 20 times); tile
sizes; and what int8 costs in F1 on CrackForest.

    .venv/bin/python benchmarks/field_speed.py [--run RUN] [--threads 2] [--repeats 2]

The model is a trained run of the default network (``--run``; without it the Lite0 U-Net from
ImageNet is trained for ``--minutes`` on CrackForest's own split into ``runs/bench_field_speed``).
The frame is a mosaic of CrackForest photos (a synthetic road where CrackForest is absent): the
time of a convolutional network does not depend on what the pixels show. GFLOPs are counted
by ``torch.utils.flop_counter`` on one tile (2 per multiply-add) times the tiles the predictor
cuts the frame into; the peak is a 4096 x 4096 float32 matrix product (``torch.mm``) and an int8
one (``torch._int_mm``) on the same threads, in the same run. The tables go to
docs/benchmarks/field_speed.md.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import ROOT, SHARED_DATA, best_time, hardware, write_docs  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from crackal import api  # noqa: E402
from crackal.data.io import list_images, read_image  # noqa: E402
from crackal.models.predict import predict_image  # noqa: E402
from crackal.models.tiling import tile_boxes  # noqa: E402
from crackal.runs.checkpoint import load_model  # noqa: E402
from crackal.uncertainty.sampling import mc_dropout  # noqa: E402

HEIGHT, WIDTH, ITERATIONS = 3000, 4000, 20


def frame() -> np.ndarray:
    """A 4000 x 3000 RGB frame: CrackForest photos side by side (a synthetic road without them)."""
    photos = list_images(SHARED_DATA / "crackforest") if (SHARED_DATA / "crackforest").is_dir() else []
    if not photos:
        from crackal.data.synth import SynthOptions, synth_sample

        return synth_sample(np.random.default_rng(0), (HEIGHT, WIDTH), SynthOptions())[0]
    tiles = [read_image(p) for p in photos]
    rows, row, width, i = [], [], 0, 0
    while sum(r.shape[0] for r in rows) < HEIGHT:
        image = tiles[i % len(tiles)]
        i += 1
        row.append(image[:320, :480])
        width += 480
        if width >= WIDTH:
            rows.append(np.concatenate(row, 1)[:, :WIDTH])
            row, width = [], 0
    return np.ascontiguousarray(np.concatenate(rows, 0)[:HEIGHT])


def peaks(repeats: int) -> tuple[float, float | None]:
    """GFLOP/s of a float32 and GOP/s of an int8 4096 x 4096 matrix product on this process's threads."""
    n = 4096
    a, b = torch.randn(n, n), torch.randn(n, n)
    fp32 = 2 * n**3 / best_time(lambda: torch.mm(a, b), repeats) / 1e9
    try:
        ai, bi = torch.randint(-128, 127, (n, n), dtype=torch.int8), torch.randint(-128, 127, (n, n), dtype=torch.int8)
        int8 = 2 * n**3 / best_time(lambda: torch._int_mm(ai, bi), repeats) / 1e9
    except (RuntimeError, AttributeError):
        int8 = None
    return fp32, int8


def gflops(fn) -> float:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn()
    return counter.get_total_flops() / 1e9


def trained_run(args) -> Path:
    if args.run:
        return args.run
    out = ROOT / "runs" / "bench_field_speed" / "run"
    if not (out / "checkpoints" / "best.pt").is_file():
        data = SHARED_DATA / "crackforest"
        if not data.is_dir():
            raise SystemExit(f"skip: no --run and no {data} to train one on")
        api.train(data, out, time_limit_min=args.minutes, threads=args.threads, progress=False)
    return out


def f1_pair(run: Path, engines: dict, tile: int) -> dict:
    """Strict and 2 px ODS F1 of each engine on the run's test split (same tiles, same images)."""
    from crackal.data.dataset import SegmentationDataset
    from crackal.data.layout import open_dataset
    from crackal.data.splits import load_split, pick
    from crackal.runs.config import TrainConfig
    from crackal.runs.folders import load_run_data
    from crackal.training.evaluation import evaluate_model

    model, state = load_model(run)
    config = TrainConfig.from_dict(state["config"])
    saved = load_run_data(run)
    pairs, _, _ = open_dataset(saved["root"], saved["masks"], config.class_names, saved["skip_invalid"], saved["binarize"])
    dataset = SegmentationDataset(pick(pairs, load_split(run / "split.json")["test"], "test"), 2, cache=False)
    scores = {}
    for name, engine in engines.items():
        result, _ = evaluate_model(model, dataset, config.class_names, (0, 2), tile,
                                   predict_fn=lambda image, e=engine: predict_image(e, image, tile_size=tile))
        crack = result["classes"][config.class_names[1]]
        scores[name] = (crack["tol0"]["ods"]["f1"], crack["tol2"]["ods"]["f1"], len(dataset))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None, help="a trained segmentation run of the default model")
    parser.add_argument("--minutes", type=float, default=4.0, help="without --run: training time of the run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tile", type=int, default=512, help="tile of the engine comparison")
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--sweep", type=int, nargs="*", default=[384, 512, 768, 1024], help="tile sizes tried with int8")
    parser.add_argument("--no-f1", action="store_true", help="skip the CrackForest F1 of float32 against int8")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from crackal.inference.onnx import OnnxSegmenter, onnx_folder
    from crackal.inference.quantize import quantize_int8

    run = trained_run(args)
    model, state = load_model(run)
    folder = onnx_folder(run)  # RUN/onnx, exported first when missing
    if not (folder / "model.int8.onnx").is_file():
        quantize_int8(folder)
    engines = {"PyTorch float32": model, "ONNX Runtime float32": OnnxSegmenter(folder, args.threads),
               "ONNX Runtime int8": OnnxSegmenter(folder, args.threads, int8=True)}
    image = frame()
    fp32_peak, int8_peak = peaks(args.repeats)
    print(f"peak: {fp32_peak:.1f} GFLOP/s float32, {int8_peak or float('nan'):.1f} GOP/s int8", flush=True)

    def frame_flops(tile: int, overlap: int) -> float:
        tiles = tile_boxes(HEIGHT, WIDTH, tile, overlap)
        return gflops(lambda: model(torch.randn(1, 3, tile, tile))) * len(tiles)

    rows = []
    flops = frame_flops(args.tile, args.overlap)
    for name, engine in engines.items():
        seconds = best_time(lambda e=engine: predict_image(e, image, tile_size=args.tile, overlap=args.overlap), args.repeats)
        peak = int8_peak if "int8" in name else fp32_peak
        rows.append([name, f"{flops:.0f}", f"{seconds:.2f}", f"{flops / seconds:.1f}", f"{peak:.1f}" if peak else "-",
                     f"{flops / seconds / peak:.0%}" if peak else "-"])
        print(rows[-1], flush=True)

    tiles = torch.stack([torch.randn(3, args.tile, args.tile) for _ in range(4)])
    count = len(tile_boxes(HEIGHT, WIDTH, args.tile, args.overlap))
    trunk = gflops(lambda: model.features(tiles))
    head = gflops(lambda: model.head(model.features(tiles))) - trunk
    mc_flops = (trunk + ITERATIONS * head) * count / 4
    mc_rows = []
    for name, run_mc in (("PyTorch float32", lambda: mc_dropout(model, tiles, iterations=ITERATIONS, path="head")),
                         ("ONNX Runtime float32", lambda: engines["ONNX Runtime float32"].mc_dropout(tiles, ITERATIONS))):
        seconds = best_time(run_mc, 1) * count / 4
        mc_rows.append([name, f"{mc_flops:.0f}", f"{seconds:.1f}", f"{mc_flops / seconds:.1f}", f"{fp32_peak:.1f}",
                        f"{mc_flops / seconds / fp32_peak:.0%}"])
        print(mc_rows[-1], flush=True)

    sweep = []
    for tile in args.sweep:
        for overlap in (32, 64):
            seconds = best_time(lambda t=tile, o=overlap: predict_image(engines["ONNX Runtime int8"], image, tile_size=t, overlap=o), 1)
            sweep.append([tile, overlap, len(tile_boxes(HEIGHT, WIDTH, tile, overlap)), f"{frame_flops(tile, overlap):.0f}",
                          f"{seconds:.2f}"])
            print(sweep[-1], flush=True)

    shown = run.resolve().relative_to(ROOT) if run.resolve().is_relative_to(ROOT) else run
    parts = [f"The default model ({state['config']['arch']}, encoder {state['config'].get('encoder')}) of `{shown}`; one "
             f"{WIDTH} x {HEIGHT} frame, tiles of {args.tile} px overlapping {args.overlap} px, batches of 4 tiles; "
             f"fastest of {args.repeats} runs. Peak: float32 {fp32_peak:.1f} GFLOP/s, int8 "
             f"{int8_peak or float('nan'):.1f} GOP/s (4096 x 4096 matrix products on {args.threads} threads).",
             (["engine", "GFLOP per frame", "s per frame", "achieved GFLOP/s", "peak", "share of peak"], rows),
             f"MC-Dropout, T = {ITERATIONS}, trunk once and the head {ITERATIONS} times per tile (measured on 4 tiles, "
             f"scaled to the frame's {count} tiles):",
             (["engine", "GFLOP per frame", "s per frame", "achieved GFLOP/s", "peak", "share of peak"], mc_rows),
             "Tile size and overlap, ONNX Runtime int8 (one run each):",
             (["tile", "overlap", "tiles", "GFLOP per frame", "s per frame"], sweep)]
    if not args.no_f1:
        scores = f1_pair(run, {"float32": engines["ONNX Runtime float32"], "int8": engines["ONNX Runtime int8"]}, args.tile)
        f1_rows = [[name, f"{s0:.4f}", f"{s2:.4f}", n] for name, (s0, s2, n) in scores.items()]
        change = scores["int8"][1] - scores["float32"][1]
        f1_rows.append(["int8 - float32", f"{scores['int8'][0] - scores['float32'][0]:+.4f}", f"{change:+.4f}", ""])
        parts += ["ODS F1 on the run's CrackForest test images (ONNX Runtime, same tiles):",
                  (["graph", "F1 strict", "F1 2 px", "images"], f1_rows)]
        print(f1_rows, flush=True)
    write_docs("field_speed", *parts, hardware=hardware())


if __name__ == "__main__":
    main()
