"""CrackForest supervised benchmark: train the default model, score the test split.

    .venv/bin/python benchmarks/crackforest_supervised.py [--minutes 30] [--out runs/bench_crackforest]

Fixed seeded split of the 118 labelled images: 70 train / 10 validation / 38 test (seed 0).
Default compact U-Net and training options, except 120 epochs and an exponential moving
average of the weights (decay 0.995), which smooths out the epoch-to-epoch noise of the
checkpoint chosen on only 10 validation images.
Prints test ODS-F1 strict and with 2 px and 5 px tolerance, OIS, IoU, AUC, the F1 at the
threshold chosen on validation, training wall time and the hardware, and writes the table to
docs/benchmarks/crackforest_supervised.md. Skips cleanly when ../shared/data/crackforest is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from _common import ROOT, dataset_or_skip, hardware, write_docs  # noqa: E402

from crackal import api  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_crackforest")
    parser.add_argument("--epochs", type=int, default=120)
    parser.add_argument("--ema-decay", type=float, default=0.995, help="weight averaging (0 = off)")
    parser.add_argument("--minutes", type=float, default=30.0, help="training time limit")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    parser.add_argument("--eval-only", action="store_true", help="score the run already in --out")
    args = parser.parse_args()
    data = dataset_or_skip("crackforest")

    started = time.perf_counter()
    if not args.eval_only:
        api.train(
            data, args.out, val=10, test=38, seed=args.seed, epochs=args.epochs, ema_decay=args.ema_decay or None,
            time_limit_min=args.minutes, resume=args.resume,
        )
    train_seconds = json.loads((args.out / "metrics.json").read_text())["history"][-1]["seconds"]
    results = {}
    for tta in (False, True):
        scores = api.evaluate(args.out, tolerances=(0, 2, 5), tta=tta, out=args.out / f"test{'_tta' if tta else ''}.json", progress=False)
        crack = scores["classes"]["crack"]
        results["tta" if tta else "plain"] = {
            "ods_f1_strict": crack["tol0"]["ods"]["f1"],
            "ods_f1_tol2": crack["tol2"]["ods"]["f1"],
            "ods_f1_tol5": crack["tol5"]["ods"]["f1"],
            "ois_f1_strict": crack["tol0"]["ois"]["f1"],
            "ois_f1_tol2": crack["tol2"]["ois"]["f1"],
            "iou_strict_at_ods": crack["tol0"]["ods"]["iou"],
            "f1_strict_at_val_threshold": crack["tol0"]["fixed"]["f1"],
            "f1_tol2_at_val_threshold": crack["tol2"]["fixed"]["f1"],
            "auc": crack["auc"],
            "seconds_per_image": scores["seconds_per_image"],
        }
    summary = {
        "dataset": f"CrackForest, 118 labelled images 480x320, split 70/10/38 (seed {args.seed:d})",
        "hardware": hardware(),
        "training_seconds": train_seconds,
        "epochs": len(json.loads((args.out / "metrics.json").read_text())["history"]),
        "protocol": "pixel counts pooled over the 38 test images; ODS/OIS over 99 thresholds; tolerance = "
        "Euclidean distance to the nearest ground-truth / predicted crack pixel; IoU strict",
        "results": results,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    (args.out / "benchmark.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    plain = results["plain"]
    print(
        f"\nCrackForest test (38 images): ODS-F1 strict {plain['ods_f1_strict']:.3f} (target >= 0.72), "
        f"2 px {plain['ods_f1_tol2']:.3f} (target >= 0.92), 5 px {plain['ods_f1_tol5']:.3f}; "
        f"with flip TTA strict {results['tta']['ods_f1_strict']:.3f}, 2 px {results['tta']['ods_f1_tol2']:.3f}; "
        f"training {train_seconds / 60:.1f} min on {summary['hardware']}"
    )
    write_docs("crackforest_supervised",
               f"{summary['epochs']} epochs, {train_seconds / 60:.1f} minutes of training; test scores on the 38 test "
               "images (480x320), pixel counts pooled over images.",
               (["protocol", "plain", "flip TTA"], docs_rows(results)), hardware=summary["hardware"])


def docs_rows(results: dict) -> list[list[str]]:
    """The rows of the docs page's table, one column per mode (plain, flip TTA)."""
    modes = [results["plain"], results["tta"]]

    def cells(fmt) -> list[str]:
        return [fmt(r) for r in modes]

    return [
        ["ODS-F1 strict", *cells(lambda r: f"{r['ods_f1_strict']:.3f} ({r['ods_f1_strict']:.4f})")],
        ["ODS-F1, 2 px tolerance", *cells(lambda r: f"{r['ods_f1_tol2']:.3f}")],
        ["ODS-F1, 5 px tolerance", *cells(lambda r: f"{r['ods_f1_tol5']:.3f}")],
        ["OIS-F1 strict / 2 px", *cells(lambda r: f"{r['ois_f1_strict']:.3f} / {r['ois_f1_tol2']:.3f}")],
        ["F1 strict / 2 px at the validation-chosen threshold",
         *cells(lambda r: f"{r['f1_strict_at_val_threshold']:.3f} / {r['f1_tol2_at_val_threshold']:.3f}")],
        ["IoU strict at the ODS threshold", *cells(lambda r: f"{r['iou_strict_at_ods']:.3f}")],
        ["pixel ROC-AUC", *cells(lambda r: f"{r['auc']:.3f}")],
        ["seconds per image", *cells(lambda r: f"{r['seconds_per_image']:.2f}")],
    ]


if __name__ == "__main__":
    main()
