"""Active learning on CrackForest: BALD and entropy against random, with the ground truth as labeller.

    .venv/bin/python benchmarks/crackforest_al.py [--seeds 3] [--rounds 14] [--out runs/bench_crackforest_al]

The pool is the 80 training + validation images of the supervised benchmark's split
(seed 0) cut into 160x160 tiles (480 tiles, many without a crack); the held-out set is its
38 test images, whole. Starting from 10 random tiles, each of 12 rounds retrains the default
U-Net from scratch (10 epochs of 64 crops) and labels 10 more tiles (up to 120, a quarter of
the pool). Prints, per strategy, the labels needed to reach 95 %
of the F1 of a model trained on the whole pool, and the area under each learning curve.
Finished runs are kept: starting it again resumes where it stopped. The table goes to
docs/benchmarks/crackforest_al.md.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from _common import ROOT, dataset_or_skip, hardware, write_docs  # noqa: E402

from crackal.active.simulate import simulate  # noqa: E402
from crackal.data.layout import open_dataset  # noqa: E402
from crackal.data.splits import make_split, save_split  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_crackforest_al")
    parser.add_argument("--strategies", nargs="+", default=["bald", "entropy", "random"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--initial", type=int, default=10)
    parser.add_argument("--step", type=int, default=10)
    parser.add_argument("--tile", type=int, default=160)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--samples-per-epoch", type=int, default=64)
    parser.add_argument("--reduction", default="topk")
    args = parser.parse_args()
    data = dataset_or_skip("crackforest")

    pairs, names, _ = open_dataset(data)
    args.out.mkdir(parents=True, exist_ok=True)
    split = make_split([p.name for p in pairs], val=10, test=38, seed=0)
    save_split(split, args.out / "split.json")
    report = simulate(
        pairs, args.out, args.strategies, seeds=args.seeds, rounds=args.rounds, split_file=args.out / "split.json",
        tile=args.tile, initial=args.initial, query_size=args.step, reduction=args.reduction,
        train={"epochs": args.epochs, "samples_per_epoch": args.samples_per_epoch, "crop_size": args.tile, "batch_size": 8,
               "class_names": names},
        on_round=lambda item: print(item if isinstance(item, str) else
                                    f"  round {item.round}: {item.labelled} labelled, F1 {item.metrics['strict']['f1']:.3f}", flush=True),
    )
    summary = json.loads((args.out / "report.json").read_text())
    print(f"\nhardware: {hardware()}")
    print(f"reference F1 (whole pool of tiles labelled, same training recipe): {summary['reference_f1']:.3f}")
    random_needed = summary["strategies"].get("random", {}).get("labels_to_target")
    for strategy, entry in summary["strategies"].items():
        needed = entry.get("labels_to_target")
        vs = f", {needed / random_needed:.0%} of random's" if needed and random_needed else ""
        share = f" ({needed / entry['pool_size']:.0%} of the pool{vs})" if needed else " (not reached)"
        print(f"{strategy:8s} labels to 95% of reference: {needed}{share}; curve area {entry['curve_area']:.3f}; "
              f"final F1 {entry['f1_mean'][-1]:.3f} at {entry['labelled'][-1]} labels")
    print(f"report: {report}")
    write_docs("crackforest_al", *docs_parts(summary), hardware=hardware())


POINTS = (10, 20, 40, 60, 80, 120)  # label counts shown in the docs table (all of them when none of these is reached)


def docs_parts(summary: dict) -> list:
    """The docs page's caption and table from report.json's summary."""
    entries = summary["strategies"]
    any_entry = next(iter(entries.values()))
    points = [n for n in any_entry["labelled"] if n in POINTS] or any_entry["labelled"]
    seeds = max(e["seeds"] for e in entries.values())
    best = max(e["curve_area"] for e in entries.values())
    rows = []
    for strategy, e in entries.items():
        f1 = dict(zip(e["labelled"], e["f1_mean"]))
        needed = e.get("labels_to_target")
        share = f" ({needed / e['pool_size'] * 100:.0f} % of the pool)" if needed else ""
        selected = e["batch_defect_pixels"][1:] or e["batch_defect_pixels"]  # the batches chosen after the first
        area = f"{e['curve_area']:.3f}"
        rows.append([strategy if strategy != "bald" else "BALD", " / ".join(f"{f1[n]:.3f}" for n in points),
                     f"**{area}**" if e["curve_area"] == best else area,
                     f"{needed}{share}" if needed else "not reached", f"{np.mean(selected) * 100:.1f} %"])
    stds = [v for e in entries.values() for v in e["f1_std"]]
    caption = (f"Reference F1 (the same recipe on all {any_entry['pool_size']} tiles): {summary['reference_f1']:.3f}. "
               f"Standard deviation over seeds: {min(stds):.3f}-{max(stds):.3f} per point (median {np.median(stds):.3f}). "
               "Crack pixels: mean share in the batches selected after the first round."
               if summary.get("reference_f1") else "No reference run.")
    header = ["strategy", f"held-out F1 (strict, ODS) at {' / '.join(map(str, points))} labels, mean of {seeds} seeds",
              "curve area", "labels to 95 % of reference", "crack pixels in selected batches"]
    return [caption, (header, rows)]


if __name__ == "__main__":
    main()
