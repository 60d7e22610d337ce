"""Sliding-window patch classification against U-Net segmentation on CrackForest.

    PYTHONPATH=. .venv/bin/python benchmarks/patch_vs_segmentation.py [--unet-run runs/bench_crackforest] [--epochs 8]

1. The patch classifier (conv-BN-ReLU blocks, softmax) is trained on the concrete crack
   patches (227x227, resized to --size) with a seeded 70/10/20 split; its held-out accuracy
   is printed.
2. On the CrackForest test images (the split of the U-Net run) both run: the classifier as a
   sliding window (--window px, --stride) and the U-Net of the foundation benchmark
   (``--unet-run``: a run folder of ``crackal train``; without one a U-Net is trained here
   with --unet-epochs). Seconds per image are measured for each.
3. Localisation against the pixel masks on one grid of --cell px squares: a square is a
   crack square when it holds at least --min-pixels crack pixels; the sliding window calls a
   square crack when the mean of its heat map there is >= 0.5, the U-Net when any pixel's
   crack probability reaches its validation threshold. Square-level precision / recall / F1
   at each model's own decision, the best F1 over thresholds, ROC-AUC, and the share of
   crack-free squares each flags (false alarms).
4. From the measured speeds, the time each would take on a 4000x3000 photo.
Results go to --out (results.json; the tables to docs/benchmarks/patch_vs_segmentation.md); the
classifier run is kept there and reused.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import ROOT, dataset_or_skip, hardware, write_docs  # noqa: E402

from crackal.classify.sliding import sliding_window  # noqa: E402
from crackal.classify.workflow import load_classifier, train_classifier  # noqa: E402
from crackal.data.layout import (
    load_pair,  # noqa: E402
    open_dataset,  # noqa: E402
)
from crackal.data.splits import load_split, make_split, save_split  # noqa: E402
from crackal.metrics.classification import roc_auc  # noqa: E402
from crackal.models.predict import predict_image  # noqa: E402
from crackal.runs.checkpoint import load_model  # noqa: E402


def cell_values(values: np.ndarray, cell: int, reduce) -> np.ndarray:
    """One value per full ``cell x cell`` square of an ``(H, W)`` map (remainder dropped)."""
    rows, cols = values.shape[0] // cell, values.shape[1] // cell
    blocks = values[: rows * cell, : cols * cell].reshape(rows, cell, cols, cell)
    return reduce(blocks, axis=(1, 3)).reshape(-1)


def square_scores(truth: np.ndarray, score: np.ndarray, threshold: float) -> dict:
    predicted = score >= threshold
    tp = float((predicted & truth).sum())
    precision, recall = tp / max(1, predicted.sum()), tp / max(1, truth.sum())
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    best = max((2 * ((score >= t) & truth).sum() / max(1, (score >= t).sum() + truth.sum()), t) for t in np.linspace(0.01, 0.99, 99))
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "best_f1": round(float(best[0]), 4), "best_threshold": round(float(best[1]), 2),
            "auc": round(roc_auc(truth, score), 4), "false_alarm_rate": round(float(predicted[~truth].mean()), 4)}


def unet_run(args, data: Path) -> Path:
    if args.unet_run and (Path(args.unet_run) / "checkpoints" / "best.pt").is_file():
        return Path(args.unet_run)
    from crackal import api

    out = args.out / "unet"
    if (out / "checkpoints" / "best.pt").is_file() and not (out / "checkpoints" / "last.pt").is_file():
        return out
    pairs, _, _ = open_dataset(data)
    split = make_split([p.name for p in pairs], val=10, test=38, seed=0)
    out.mkdir(parents=True, exist_ok=True)
    save_split(split, args.out / "unet_split.json")
    print(f"no U-Net run given: training one for {args.unet_epochs} epochs into {out}", flush=True)
    api.train(data, out, split_file=args.out / "unet_split.json", epochs=args.unet_epochs, crop_size=320,
              resume=(out / "config.json").is_file(), progress=False)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_patch_vs_seg")
    parser.add_argument("--unet-run", type=Path, default=ROOT / "runs" / "bench_crackforest")
    parser.add_argument("--unet-epochs", type=int, default=40)
    parser.add_argument("--size", type=int, default=64, help="classifier input size (patches are resized)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--window", type=int, default=64, help="sliding window in CrackForest px")
    parser.add_argument("--stride", type=int, default=16)
    parser.add_argument("--cell", type=int, default=32, help="square size of the common evaluation grid")
    parser.add_argument("--min-pixels", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    patches, crackforest = dataset_or_skip("concrete_crack_cls"), dataset_or_skip("crackforest")

    run = args.out / "classifier"
    if not (run / "evaluation_test.json").is_file():
        train_classifier(patches, run, val=0.1, test=0.2, size=args.size, epochs=args.epochs, batch_size=64,
                         progress=lambda m: print(m, flush=True))
    held_out = json.loads((run / "evaluation_test.json").read_text())
    print(f"patch classifier, {held_out['patches']} held-out concrete patches: accuracy {held_out['accuracy']:.4f}, "
          f"precision {held_out['precision']:.4f}, recall {held_out['recall']:.4f}, F1 {held_out['f1']:.4f}, "
          f"ROC-AUC {held_out['auc']:.4f}", flush=True)
    classifier, config = load_classifier(run)

    unet_dir = unet_run(args, crackforest)
    unet, state = load_model(unet_dir)
    threshold = state.get("threshold", 0.5)
    pairs, _, _ = open_dataset(crackforest)
    test_names = set(load_split(unet_dir / "split.json")["test"])
    test = [p for p in pairs if p.name in test_names]

    truth, sw_scores, unet_scores, sw_seconds, unet_seconds, windows = [], [], [], [], [], 0
    for pair in test:
        image, mask = load_pair(pair, 2)
        started = time.perf_counter()
        result = sliding_window(classifier, image, args.window, args.stride, 256, config.size)
        sw_seconds.append(time.perf_counter() - started)
        windows += result["grid"][0].size
        started = time.perf_counter()
        probs = predict_image(unet, image)
        unet_seconds.append(time.perf_counter() - started)
        truth.append(cell_values(mask.astype(np.int64), args.cell, np.sum) >= args.min_pixels)
        sw_scores.append(cell_values(1 - result["heat"][0], args.cell, np.mean))
        unet_scores.append(cell_values(probs[1], args.cell, np.max))
    truth, sw_scores, unet_scores = np.concatenate(truth), np.concatenate(sw_scores), np.concatenate(unet_scores)
    results = {
        "hardware": hardware(), "images": len(test),
        "grid": f"{args.cell}x{args.cell} px squares, crack when >= {args.min_pixels} crack px",
        "squares": int(truth.size), "crack_squares": int(truth.sum()), "classifier_held_out": held_out,
        "sliding_window": {"window": args.window, "stride": args.stride, "windows_per_image": windows / len(test),
                           "seconds_per_image": round(float(np.mean(sw_seconds)), 3),
                           **square_scores(truth, sw_scores, 0.5)},
        "unet": {"run": str(unet_dir), "threshold": threshold, "seconds_per_image": round(float(np.mean(unet_seconds)), 3),
                 **square_scores(truth, unet_scores, threshold)},
    }
    per_window = float(np.sum(sw_seconds)) / windows
    photo = (3000, 4000)  # a 12-megapixel inspection photo
    results["full_size_photo"] = {
        "size": f"{photo[1]}x{photo[0]}", "seconds_per_window": per_window,
        **{f"stride{s}_windows": int(np.prod([(n - args.window) // s + 1 for n in photo])) for s in (args.stride, 1)},
        **{f"stride{s}_seconds_estimated": round(per_window * np.prod([(n - args.window) // s + 1 for n in photo]), 1)
           for s in (args.stride, 1)},
        "unet_seconds_estimated": round(float(np.mean(unet_seconds)) * np.prod(photo) / (480 * 320), 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print(f"\nhardware: {results['hardware']}")
    print(f"CrackForest test: {len(test)} images 480x320, {truth.size} squares of {args.cell} px, {truth.sum()} with cracks")
    print(f"{'method':34s} {'s/image':>8s} {'precision':>9s} {'recall':>7s} {'F1':>6s} {'best F1':>8s} {'AUC':>6s} {'false alarms':>12s}")
    for name, key in ((f"sliding window {args.window}/{args.stride}", "sliding_window"), ("U-Net (whole image)", "unet")):
        r = results[key]
        print(f"{name:34s} {r['seconds_per_image']:8.3f} {r['precision']:9.3f} {r['recall']:7.3f} {r['f1']:6.3f} "
              f"{r['best_f1']:8.3f} {r['auc']:6.3f} {r['false_alarm_rate']:12.3f}")
    big = results["full_size_photo"]
    print(f"a {big['size']} photo, from the measured speeds: sliding window {big[f'stride{args.stride}_seconds_estimated']:.0f} s "
          f"at stride {args.stride}, {big['stride1_seconds_estimated'] / 3600:.1f} h at stride 1; "
          f"U-Net {big['unet_seconds_estimated']:.0f} s")
    print(f"results: {args.out / 'results.json'}")
    write_docs("patch_vs_segmentation", *docs_parts(results, args), hardware=results["hardware"])


def docs_parts(results: dict, args) -> list:
    """The docs page's caption and tables from results.json."""
    held = results["classifier_held_out"]
    classifier = (["held-out patches", "accuracy", "precision", "recall", "ROC-AUC"],
                  [[f"{held['patches']:,}", f"{held['accuracy']:.3f}", f"{held['precision']:.3f}", f"{held['recall']:.3f}",
                    f"{held['auc']:.4f}"]])
    rows = []
    for name, key in (("sliding window, patch classifier", "sliding_window"), ("U-Net, whole image", "unet")):
        r = results[key]
        rows.append([name, f"{r['seconds_per_image']:.3f}", f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}",
                     f"{r['best_f1']:.3f}", f"{r['auc']:.3f}", f"{r['false_alarm_rate'] * 100:.1f} %"])
    methods = (["method", "seconds per image (480x320)", "square precision", "square recall", "F1", "best F1 (any threshold)",
                "square ROC-AUC", "crack-free squares flagged"], rows)
    big, stride = results["full_size_photo"], args.stride
    photo = ([f"{big['size']} photo, from the measured speeds", "time"], [
        ["U-Net, whole image", f"{big['unet_seconds_estimated']:.0f} s"],
        [f"sliding window, stride {stride}", f"{big[f'stride{stride}_seconds_estimated']:.0f} s"],
        ["sliding window, stride 1",
         f"{big['stride1_seconds_estimated'] / 3600:.1f} hours ({big['stride1_windows'] / 1e6:.1f} M windows)"],
    ])
    caption = (f"{results['images']} CrackForest test images, {results['squares']:,} squares of {args.cell} px "
               f"({results['crack_squares']:,} with at least {args.min_pixels} crack pixels); sliding window {args.window} px, "
               f"stride {stride}; U-Net threshold {results['unet']['threshold']:.2f} (from its validation).")
    return [caption, classifier, methods, photo]


if __name__ == "__main__":
    main()
