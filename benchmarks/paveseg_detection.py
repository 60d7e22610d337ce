"""PaveSeg detection benchmark: a multi-class RetinaNet (crack, pothole, sealed crack, patch,
alligator crack, utility cover, expansion joint) with per-class AP.

    .venv/bin/python benchmarks/paveseg_detection.py [--epochs 40] [--image-size 540] [--out runs/bench_paveseg_detection]

Boxes: the dataset's det_voc/ files (derived from the masks by the dataset's converter);
masks/ give the pixel measures. Seeded split 70 / 10 / 20 (seed 0, the split of
benchmarks/paveseg_multiclass.py). Images are rescaled to a short side of ``--image-size``
(the 1280x1080 originals are too large to train on a CPU). Prints mAP@0.5, mAP@0.5:0.95,
per-class AP, box precision, segmentation error, data reduction and seconds per image, and
writes them to docs/benchmarks/paveseg_detection.md. Skips cleanly when ../shared/data/paveseg is absent.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from _common import ROOT, dataset_or_skip, hardware, write_docs  # noqa: E402
from _detection import detection_arguments, print_detection, save, train_and_score_detector  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_paveseg_detection")
    detection_arguments(parser, epochs=40, image_size=540, minutes=40.0)
    args = parser.parse_args()
    data = dataset_or_skip("paveseg")
    started = time.perf_counter()
    scores = train_and_score_detector(data, args.out, None, args, val=10, test=20, seed=0)
    summary = {"dataset": "PaveSeg preview, det_voc boxes, split 70/10/20 (seed 0)", "hardware": hardware(),
               "backbone": args.backbone, "image_size": args.image_size, "detection": scores,
               "wall_seconds": round(time.perf_counter() - started, 1)}
    save(args.out, summary)
    print_detection("PaveSeg", scores)
    print(f"hardware: {summary['hardware']}")
    rows = [["mAP@0.5", f"{scores['map_50']:.3f}"], ["mAP@0.5:0.95", f"{scores['map']:.3f}"]]
    rows += [[f"AP@0.5 {name}", f"{entry['ap_50']:.3f}"] for name, entry in scores["classes"].items()]
    if "box_precision" in scores:
        rows += [["box precision", f"{scores['box_precision']:.3f}"],
                 ["segmentation error", f"{scores['segmentation_error']:.4f}"],
                 ["data reduction", f"{scores['data_reduction']:.3f}"]]
    if "score_threshold" in scores:
        rows += [["box score threshold (chosen on validation)", f"{scores['score_threshold']:.2f}"]]
    size = f"images rescaled to a short side of {args.image_size} px" if args.image_size else "images at their own size"
    write_docs("paveseg_detection", f"RetinaNet {args.backbone}, {size}; {scores['images']} test images.",
               ([f"measure ({scores['images']} test images)", "value"], rows), hardware=summary["hardware"])


if __name__ == "__main__":
    main()
