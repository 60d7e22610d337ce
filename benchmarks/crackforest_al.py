"""Active learning on CrackForest: BALD and entropy against random, from scratch and warm-started, with the ground truth as labeller.

    .venv/bin/python benchmarks/crackforest_al.py [--seeds 3] [--jobs 2] [--out runs/bench_crackforest_al]

The pool is the 80 training + validation images of the supervised benchmark's split (seed 0)
cut into 160x160 tiles and mixed so that half of them hold no crack pixel (as on a real
survey: all the crack-free tiles, as many cracked ones drawn at random); the held-out set is
its 38 test images, whole. Starting from 8 random tiles, each of 7 rounds trains a U-Net of
half the default width (crops of 128) for a number of steps that grows with the labelled
tiles (``round_steps="auto"``, with early stopping on a validation slice of the labelled
tiles) and labels 8 more. Each strategy
runs from scratch and warm-started (``+warm``). Prints, per run, the labels needed to reach
95 % of the F1 of the same recipe on the whole pool, the ratio to random's, the forecast made
from the rounds up to 30 % of the pool against the F1 the whole pool reached, and the paired
per-seed differences. Finished runs are kept: starting it again resumes where it stopped.
The tables go to docs/benchmarks/crackforest_al.md.
"""

from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from _al import FINDINGS_HEADER, al_arguments, findings, paired_rows, simulate_from_arguments  # noqa: E402
from _common import ROOT, dataset_or_skip, hardware, write_docs  # noqa: E402

from crackal.data.layout import open_dataset  # noqa: E402
from crackal.data.splits import make_split, save_split  # noqa: E402

SUPERVISED_F1 = 0.720  # crackforest_supervised.py on the same 38 test images (docs/benchmarks/crackforest_supervised.md)
STRATEGIES = ["bald", "entropy", "random", "bald+warm", "entropy+warm", "random+warm"]


def main() -> None:
    parser = al_arguments(__doc__, ROOT / "runs" / "bench_crackforest_al", STRATEGIES, rounds=7, initial=8, step=8, tile=160)
    parser.add_argument("--round-steps", default="auto", help="auto, a number of steps, or 'epochs' for the fixed recipe")
    args = parser.parse_args()
    data = dataset_or_skip("crackforest")

    pairs, names, _ = open_dataset(data)
    args.out.mkdir(parents=True, exist_ok=True)
    split = make_split([p.name for p in pairs], val=10, test=38, seed=0)
    save_split(split, args.out / "split.json")
    summary = simulate_from_arguments(pairs, args, names, None if args.round_steps == "epochs" else args.round_steps)
    lines, rows = findings(summary, SUPERVISED_F1)
    print(f"\nhardware: {hardware()}")
    print(f"reference F1 (whole pool of tiles labelled, same schedule): {summary['reference_f1']:.3f}; "
          f"pool {summary['strategies'][args.strategies[0]]['pool_size']} tiles, "
          f"{summary['pool']['crack_free_share']:.0%} crack-free")
    print("\n".join(lines))
    print(f"report: {args.out / 'report.md'}")
    write_docs("crackforest_al", *docs_parts(summary), (FINDINGS_HEADER, rows), paired_rows(summary),
               "\n".join(f"- {line}" for line in lines if line.startswith(("target", "whole-pool"))), hardware=hardware())


POINTS = (8, 16, 24, 32, 40, 48, 56, 64)  # label counts shown in the docs table (all of them when none of these is reached)


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
                     f"{needed}{share}" if needed else "not reached", f"{np.mean(selected) * 100:.1f} %",
                     f"{np.mean(e['batch_defect_images'][1:] or e['batch_defect_images']) * 100:.0f} %"])
    stds = [v for e in entries.values() for v in e["f1_std"]]
    caption = (f"Reference F1 (the same schedule on all {any_entry['pool_size']} tiles, "
               f"{summary['pool']['crack_free_share']:.0%} of them crack-free): {summary['reference_f1']:.3f}. "
               f"Standard deviation over seeds: {min(stds):.3f}-{max(stds):.3f} per point (median {np.median(stds):.3f}). "
               "Crack pixels: mean share in the batches selected after the first round."
               if summary.get("reference_f1") else "No reference run.")
    header = ["strategy", f"held-out F1 (strict, ODS) at {' / '.join(map(str, points))} labels, mean of {seeds} seeds",
              "curve area", "labels to 95 % of reference", "crack pixels in selected batches", "selected tiles holding a crack"]
    return [caption, (header, rows)]


if __name__ == "__main__":
    main()
