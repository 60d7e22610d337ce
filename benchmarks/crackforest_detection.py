"""CrackForest detection benchmark: RetinaNet on boxes derived from the masks, then detect-then-segment.

    .venv/bin/python benchmarks/crackforest_detection.py [--epochs 40] [--minutes 30] [--out runs/bench_crackforest_detection]

Boxes come from the pixel masks (connected components, merge distance 8 px, at least 20 px),
as the RetinaNet crack paper did for CrackForest. Split: the segmentation benchmark's
(70 train / 10 validation / 38 test, seed 0), read from its run folder (``--seg-run``, made by
benchmarks/crackforest_supervised.py; trained here with a short budget when absent). Prints
mAP@0.5 and @0.5:0.95, the paper's box precision, segmentation error and data reduction (at
the box score chosen on validation), seconds per image, and for detect-then-segment its F1
and time next to full-image segmentation with the same U-Net on the same test images.
Published (ResNet RetinaNet, GPU): box precision 98.92 %, segmentation error 1.22 %, data
reduction 72.12 %, 0.053 s per image. The table goes to docs/benchmarks/crackforest_detection.md.
Skips cleanly when ../shared/data/crackforest is absent.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from _common import ROOT, dataset_or_skip, hardware, write_docs  # noqa: E402
from _detection import compare_two_stage, detection_arguments, print_detection, save, train_and_score_detector  # noqa: E402

from crackal import api  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_crackforest_detection")
    parser.add_argument("--seg-run", type=Path, default=ROOT / "runs" / "bench_crackforest")
    parser.add_argument("--seg-minutes", type=float, default=15.0, help="budget of the U-Net when --seg-run is absent")
    parser.add_argument("--margin", type=int, default=16, help="two-stage: context added around each box (px)")
    detection_arguments(parser, epochs=40, image_size=0, minutes=30.0)
    args = parser.parse_args()
    data = dataset_or_skip("crackforest")
    started = time.perf_counter()
    if not (args.seg_run / "checkpoints" / "best.pt").is_file():
        api.train(data, args.seg_run, val=10, test=38, seed=0, epochs=120, ema_decay=0.995, time_limit_min=args.seg_minutes,
                  device=args.device, resume=(args.seg_run / "config.json").is_file())
    scores = train_and_score_detector(data, args.out, args.seg_run / "split.json", args)
    two_stage = compare_two_stage(data, args.seg_run, args.out / "detector", args.margin)
    summary = {"dataset": "CrackForest, boxes from masks (merge 8 px, >= 20 px), split 70/10/38 (seed 0)",
               "hardware": hardware(), "backbone": args.backbone, "detection": scores, "two_stage": two_stage,
               "wall_seconds": round(time.perf_counter() - started, 1)}
    save(args.out, summary)
    print_detection("CrackForest", scores)
    f, t = two_stage["full_image"], two_stage["two_stage"]
    print(f"\ndetect-then-segment vs full image ({two_stage['images']} test images, {two_stage['device']}, margin "
          f"{args.margin} px): ODS-F1 strict {t['ods_f1_tol0']:.3f} vs {f['ods_f1_tol0']:.3f}, 2 px {t['ods_f1_tol2']:.3f} vs "
          f"{f['ods_f1_tol2']:.3f}; {t['seconds_per_image']:.3f} vs {f['seconds_per_image']:.3f} s/image; "
          f"{t['share_of_pixels_segmented']:.1%} of the pixels segmented; the detector alone "
          f"{two_stage['detector_seconds_per_image']:.3f} s/image")
    print(f"hardware: {summary['hardware']}")
    write_docs("crackforest_detection",
               f"RetinaNet {args.backbone}; box score threshold {scores['score_threshold']:.2f} (chosen on the validation "
               f"images); two-stage margin {args.margin} px.",
               docs_table(scores, two_stage), hardware=summary["hardware"])


PAPER = {"box precision": "0.989", "segmentation error": "0.0122", "data reduction": "0.721", "seconds": "0.053"}


def docs_table(scores: dict, two_stage: dict) -> tuple[list[str], list[list[str]]]:
    """The docs page's table: crackal's test scores beside the RetinaNet crack paper's."""
    f, t = two_stage["full_image"], two_stage["two_stage"]
    device = "GPU" if two_stage["device"] == "cuda" else "CPU"
    rows = [
        ["mAP@0.5 / mAP@0.5:0.95 (COCO)", f"{scores['map_50']:.3f} / {scores['map']:.3f}", "-"],
        ["box precision", f"{scores['box_precision']:.3f}", PAPER["box precision"]],
        ["segmentation error", f"{scores['segmentation_error']:.4f}", PAPER["segmentation error"]],
        ["data reduction", f"{scores['data_reduction']:.3f}", PAPER["data reduction"]],
        ["detect-then-segment: ODS-F1 strict / 2 px",
         f"{t['ods_f1_tol0']:.3f} / {t['ods_f1_tol2']:.3f} (full image: {f['ods_f1_tol0']:.3f} / {f['ods_f1_tol2']:.3f})", "-"],
        [f"detect-then-segment: seconds per image ({device})",
         f"{t['seconds_per_image']:.3f} (full image: {f['seconds_per_image']:.3f})", PAPER["seconds"]],
    ]
    return [f"measure ({scores['images']} test images)", "crackal", "RetinaNet crack paper"], rows


if __name__ == "__main__":
    main()
