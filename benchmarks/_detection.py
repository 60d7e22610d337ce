"""The detection benchmarks' shared steps: train (or resume) a RetinaNet on a seeded split,
score it on the test images, and compare detect-then-segment with full-image segmentation."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from crackal import api
from crackal.data.layout import find_pairs, load_pair
from crackal.data.splits import load_split
from crackal.inference.two_stage import predict_two_stage
from crackal.metrics.segmentation import SegmentationEvaluator
from crackal.models.detect import detect_image
from crackal.models.predict import predict_image
from crackal.runs.checkpoint import load_detector, load_model


def detection_arguments(parser: argparse.ArgumentParser, epochs: int, image_size: int, minutes: float) -> None:
    parser.add_argument("--backbone", default="resnet18", help="resnet18, resnet34 or resnet50")
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--image-size", type=int, default=image_size, help="short image side (0 = native)")
    parser.add_argument("--minutes", type=float, default=minutes, help="detector training time limit")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--eval-only", action="store_true", help="score the detector already in --out")


def train_and_score_detector(data: Path, out: Path, split_file: Path | None, args, **split) -> dict:
    """Train (resuming a killed run) and score on the test split; returns detect_evaluate's result."""
    run = out / "detector"
    if not args.eval_only:
        api.detect_train(data, run, split_file=split_file, backbone=args.backbone, epochs=args.epochs,
                         batch_size=args.batch_size, lr=args.lr, image_size=args.image_size, time_limit_min=args.minutes,
                         device=args.device, resume=(run / "config.json").is_file(), **split)
    return api.detect_evaluate(run, split="test", progress=False)


def compare_two_stage(data: Path, seg_run: Path, det_run: Path, margin: int, repeats: int = 3) -> dict:
    """Full-image vs detect-then-segment on the segmentation run's test images: pooled strict /
    2 px ODS-F1, prediction seconds per image (median of ``repeats``, measured alternately;
    the detector alone too), and the share of pixels the second stage segments."""
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    segmenter, seg_state = load_model(seg_run, device)
    detector, det_state = load_detector(det_run, device)
    names = seg_state["config"]["class_names"]
    test = set(load_split(seg_run / "split.json")["test"])
    pairs = [p for p in find_pairs(data) if p.name in test]
    full, two = SegmentationEvaluator(names, (0, 2)), SegmentationEvaluator(names, (0, 2))
    times = {"full": [], "two_stage": [], "detector": []}
    segmented, pixels = 0, 0

    def timed(fn):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = fn()
        if device == "cuda":
            torch.cuda.synchronize()
        return result, time.perf_counter() - start

    image0 = load_pair(pairs[0], len(names))[0]
    predict_image(segmenter, image0)  # warm-up
    predict_two_stage(segmenter, detector, image0, len(names), det_state["threshold"], margin)
    for pair in pairs:
        image, mask = load_pair(pair, len(names))
        run_full = lambda: predict_image(segmenter, image)  # noqa: E731
        run_two = lambda: predict_two_stage(segmenter, detector, image, len(names), det_state["threshold"], margin)  # noqa: E731
        seconds = {"full": [], "two_stage": [], "detector": []}
        for _ in range(repeats):
            probs_full, t_full = timed(run_full)
            (probs_two, _, regions), t_two = timed(run_two)
            seconds["detector"].append(timed(lambda: detect_image(detector, image))[1])
            seconds["full"].append(t_full)
            seconds["two_stage"].append(t_two)
        for key in times:
            times[key].append(float(np.median(seconds[key])))
        full.update(probs_full, mask)
        two.update(probs_two, mask)
        segmented += int(sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in regions))
        pixels += mask.size

    def headline(result: dict) -> dict:
        entry = result["classes"][names[1]] if len(names) == 2 else None
        scores = [entry] if entry else list(result["classes"].values())
        return {f"ods_f1_{tol}": round(float(np.mean([s[tol]["ods"]["f1"] for s in scores])), 4) for tol in ("tol0", "tol2")}

    return {
        "device": device,
        "images": len(pairs),
        "box_margin_px": margin,
        "box_threshold": det_state["threshold"],
        "full_image": {**headline(full.compute()), "seconds_per_image": round(float(np.mean(times["full"])), 4)},
        "detector_seconds_per_image": round(float(np.mean(times["detector"])), 4),
        "two_stage": {**headline(two.compute()), "seconds_per_image": round(float(np.mean(times["two_stage"])), 4),
                      "share_of_pixels_segmented": round(segmented / pixels, 4)},
    }


def print_detection(name: str, scores: dict) -> None:
    print(f"\n{name} detection, test split ({scores['images']} images): mAP@0.5 {scores['map_50']:.3f}, "
          f"mAP@0.5:0.95 {scores['map']:.3f}, {scores['seconds_per_image']:.3f} s/image")
    if "box_precision" in scores:
        print(f"  at box score >= {scores['score_threshold']:.2f} (chosen on validation): box precision "
              f"{scores['box_precision']:.4f}, segmentation error {scores['segmentation_error']:.4f}, "
              f"data reduction {scores['data_reduction']:.4f}")
    for cls, entry in scores["classes"].items():
        print(f"  AP@0.5 {cls:16s} {entry['ap_50']:.3f}   AP@0.5:0.95 {entry['ap']:.3f}")


def save(out: Path, summary: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmark.json").write_text(json.dumps(summary, indent=1))
