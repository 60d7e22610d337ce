"""Cracks and potholes in one model on road survey frames: per-class IoU, F1 and area error on held-out road segments.

    .venv/bin/python benchmarks/road_potholes_multiclass.py [--minutes 40] [--out runs/bench_road_potholes_multiclass]

``road_cracks_potholes`` holds 754 forward-view frames (1024x640) of 28 road segments with
masks of three classes (background, crack, pothole). Frames of one segment look alike, so the
split is by segment (``make_group_split``, seed 0: about 10 % of the frames for validation, 20 %
held out), never by frame. Every frame is shrunk 2x (512x320, as in ``road_potholes_al.py``);
the default model (ImageNet Lite0 U-Net) trains on crops with the multi-class recipe of
``paveseg_multiclass.py`` (class-aware crops, square-root inverse class weights, cross-entropy +
Dice) and predicts whole held-out frames. The crack labels are coarse blobs drawn along
cracking, not crack pixels, so crack IoU / F1 measure how well the model finds cracked areas.
Tables to docs/benchmarks/road_potholes_multiclass.md.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import torch  # noqa: E402
from _common import ROOT, dataset_or_skip, hardware, write_docs  # noqa: E402
from paveseg_multiclass import SCORE_HEADER, docs_rows, per_class_scores, print_scores  # noqa: E402
from road_potholes_al import shrunk_frames  # noqa: E402

from crackal import api  # noqa: E402
from crackal.data.dataset import SegmentationDataset  # noqa: E402
from crackal.data.splits import load_split, make_group_split, save_split  # noqa: E402
from crackal.runs.checkpoint import load_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_road_potholes_multiclass")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--minutes", type=float, default=40.0, help="training time limit")
    parser.add_argument("--crop-size", type=int, default=256)
    parser.add_argument("--class-aware", type=float, default=0.5, help="share of crops centred on a class drawn uniformly")
    parser.add_argument("--class-weighting", default="sqrt_inverse")
    parser.add_argument("--downscale", type=int, default=1, help="the network runs on the (already 2x shrunk) frames shrunk again")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--val-interval", type=int, default=2)
    parser.add_argument("--ema-decay", type=float, default=None, help="validate and keep a moving average of the weights")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--seed", type=int, default=0, help="training seed (weights, crops); the split stays seed 0")
    args = parser.parse_args()
    data = dataset_or_skip("road_cracks_potholes")
    if args.threads:
        torch.set_num_threads(args.threads)  # also when a finished run is only scored again

    args.out.mkdir(parents=True, exist_ok=True)
    pairs, groups = shrunk_frames(data, args.out / "frames", every=1)
    split_file = args.out / "split.json"
    if not split_file.is_file():
        save_split(make_group_split(groups, val=0.1, test=0.2, seed=0), split_file)
    split = load_split(split_file)
    held = sorted({groups[n] for n in split["test"]})
    print(f"{len(pairs)} frames of {len(set(groups.values()))} segments; held out: {len(split['test'])} frames of "
          f"{len(held)} segments", flush=True)
    names = json.loads((data / "classes.json").read_text())
    if not (args.out / "run" / "checkpoints" / "best.pt").is_file() or not (args.out / "run" / "metrics.json").is_file():
        api.train(args.out / "frames", args.out / "run", split_file=split_file, classes=names, epochs=args.epochs,
                  crop_size=args.crop_size, downscale=args.downscale, batch_size=args.batch_size,
                  class_aware=args.class_aware, class_weighting=args.class_weighting, ema_decay=args.ema_decay,
                  tile_size=512, val_interval=args.val_interval, time_limit_min=args.minutes, threads=args.threads, seed=args.seed,
                  resume=(args.out / "run" / "config.json").is_file(), progress=False)
    model, state = load_model(args.out / "run")
    held_out = set(split["test"])
    test = SegmentationDataset([p for p in pairs if p.name in held_out], len(names))
    scores = per_class_scores(model, test, names, state["config"]["tile_size"])
    (args.out / "per_class.json").write_text(json.dumps(scores, indent=1))
    history = json.loads((args.out / "run" / "metrics.json").read_text())["history"]
    caption = (f"{len(pairs)} frames of {len(set(groups.values()))} road segments, shrunk 2x (512x320); "
               f"{len(test)} held-out frames of {len(held)} whole segments. {len(history)} of {args.epochs} epochs "
               f"(the learning rate annealed over those that fit in {args.minutes:g} min), "
               f"{history[-1]['seconds'] / 60:.1f} min of training{f', seed {args.seed}' if args.seed else ''}; "
               "arg-max prediction, strict pixels pooled.")
    print(f"hardware: {hardware()}\n{caption}")
    print_scores(scores)
    write_docs("road_potholes_multiclass", caption,
               (SCORE_HEADER, docs_rows(scores)),
               hardware=hardware())


if __name__ == "__main__":
    main()
