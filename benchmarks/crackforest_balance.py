"""Imbalance handling on CrackForest: plain CE, weighted CE, Dice, focal and the
precision-recall flow (PRF: on CE, on CE + Dice, on Dice alone; read on the 10
validation images, or on them and the 70 training images), same model and budget, several seeds.

    .venv/bin/python benchmarks/crackforest_balance.py [--seeds 3] [--epochs 20] [--out runs/bench_balance]

Split of the supervised benchmark (70 train / 10 validation / 38 test, seed 0); the default
compact U-Net trained from scratch with crops of 256, one crop per training image per epoch.
Test precision, recall and F1 (strict and 2 px tolerance) at the model's own decision
(probability 0.5; an F1-maximising threshold would hide the imbalance), |P - R|, and the
ODS-F1 for reference; mean and spread over seeds. Finished runs are kept: running it again
resumes. A run that starts at seed 0 writes its table to docs/benchmarks/crackforest_balance.md
(one block per --out folder; after runs split with --first-seed, --report-only writes it).
Skips cleanly when ../shared/data/crackforest is absent.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np  # noqa: E402
from _common import ROOT, dataset_or_skip, hardware, write_docs  # noqa: E402

from crackal import api  # noqa: E402
from crackal.data.dataset import SegmentationDataset  # noqa: E402
from crackal.data.layout import open_dataset  # noqa: E402
from crackal.data.splits import make_split, save_split  # noqa: E402
from crackal.runs.checkpoint import load_model  # noqa: E402
from crackal.training.evaluation import evaluate_model  # noqa: E402

METHODS = {
    "ce": dict(loss="ce", class_weighting="none"),
    "weighted_ce": dict(loss="ce", class_weighting="inverse"),
    "dice": dict(loss="dice"),
    "focal": dict(loss="focal", class_weighting="none"),
    "prf": dict(loss="ce", class_weighting="sqrt_inverse", balance="prf"),
    "prf_dice": dict(loss="ce+dice", class_weighting="sqrt_inverse", balance="prf"),
    "prf_unweighted": dict(loss="ce", class_weighting="none", balance="prf"),
    "prf_tversky": dict(loss="dice", balance="prf"),
    "prf_wide_monitor": dict(loss="ce", class_weighting="sqrt_inverse", balance="prf", monitor_train=70),
    "prf_dice_wide_monitor": dict(loss="ce+dice", class_weighting="sqrt_inverse", balance="prf", monitor_train=70),
}
LABELS = {  # the docs table's method column
    "ce": "plain CE (`--loss ce --class-weighting none`)",
    "weighted_ce": "weighted CE (`--loss ce --class-weighting inverse`)",
    "dice": "Dice (`--loss dice`)",
    "focal": "focal (`--loss focal --class-weighting none`)",
    "prf": "PRF (`--loss ce --balance prf`)",
    "prf_wide_monitor": "PRF, wider monitor (`--loss ce --balance prf --monitor-train 70`)",
    "prf_dice": "PRF on CE + Dice (`--loss ce+dice --balance prf`)",
    "prf_dice_wide_monitor": "PRF on CE + Dice, wider monitor (`--loss ce+dice --balance prf --monitor-train 70`)",
    "prf_tversky": "PRF on Dice (`--loss dice --balance prf`)",
    "prf_unweighted": "PRF on unweighted CE (`--loss ce --class-weighting none --balance prf`)",
}


def score(run: Path, pairs_by_name: dict, test_names: list[str]) -> dict:
    """Test scores at probability 0.5 (strict and 2 px) and the strict ODS-F1."""
    model, state = load_model(run)
    test = SegmentationDataset([pairs_by_name[n] for n in test_names], 2)
    result, _ = evaluate_model(model, test, ["background", "crack"], (0, 2), fixed_threshold=0.5)
    crack = result["classes"]["crack"]
    fixed, fixed2 = crack["tol0"]["fixed"], crack["tol2"]["fixed"]
    return {"precision": fixed["precision"], "recall": fixed["recall"], "f1": fixed["f1"],
            "gap": abs(fixed["precision"] - fixed["recall"]), "f1_tol2": fixed2["f1"],
            "precision_tol2": fixed2["precision"], "recall_tol2": fixed2["recall"],
            "ods_f1": crack["tol0"]["ods"]["f1"], "seconds": state["val"]["seconds"] if "val" in state else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_balance")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="run seeds first-seed .. seeds-1 (to share the work between processes)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--crop-size", type=int, default=256)
    parser.add_argument("--report-only", action="store_true", help="print the table of the finished runs, train nothing")
    args = parser.parse_args()
    data = dataset_or_skip("crackforest")

    pairs, _, _ = open_dataset(data)
    split = make_split([p.name for p in pairs], val=10, test=38, seed=0)
    args.out.mkdir(parents=True, exist_ok=True)
    save_split(split, args.out / "split.json")
    by_name = {p.name: p for p in pairs}
    results: dict[str, list[dict]] = {}
    for method in args.methods:
        for seed in range(args.first_seed, args.seeds):
            run = args.out / method / f"seed{seed}"
            done = run / "test_scores.json"
            if args.report_only and not done.is_file():
                continue
            if not done.is_file():
                api.train(data, run, split_file=args.out / "split.json", seed=seed, epochs=args.epochs,
                          crop_size=args.crop_size, resume=(run / "config.json").is_file(), progress=False,
                          **METHODS[method])
                done.write_text(json.dumps(score(run, by_name, split["test"])))
            results.setdefault(method, []).append(json.loads(done.read_text()))
            r = results[method][-1]
            print(f"{method:12s} seed {seed}: P {r['precision']:.3f} R {r['recall']:.3f} F1 {r['f1']:.3f} "
                  f"F1@2px {r['f1_tol2']:.3f} |P-R| {r['gap']:.3f} ODS-F1 {r['ods_f1']:.3f}", flush=True)

    print(f"\nhardware: {hardware()}")
    print(f"{args.epochs} epochs x one crop of {args.crop_size} per training image, test = 38 images, "
          "threshold 0.5, mean +- std over seeds")
    keys = ("precision", "recall", "f1", "f1_tol2", "gap", "ods_f1")
    print("| method | seeds | " + " | ".join(keys).replace("gap", "abs(P-R)") + " |")
    print("| --- | --- |" + " --- |" * len(keys))
    summary = {}
    for method, runs in results.items():
        values = {k: (float(np.mean([r[k] for r in runs])), float(np.std([r[k] for r in runs]))) for k in keys}
        summary[method] = values
        print(f"| {method} | {len(runs)} | " + " | ".join(f"{m:.3f} +- {s:.3f}" for m, s in values.values()) + " |")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    if summary and args.first_seed == 0:
        seeds = max(len(runs) for runs in results.values())
        write_docs("crackforest_balance",
                   f"{args.epochs} epochs of one crop of {args.crop_size} per training image; test = 38 images, threshold "
                   f"0.5; mean +- standard deviation over {seeds} seeds.", docs_table(summary),
                   hardware=hardware(), block=None if args.out.name == "bench_balance" else args.out.name)


def docs_table(summary: dict) -> tuple[list[str], list[list[str]]]:
    """The docs page's table, the best F1, F1 at 2 px, ODS-F1 (highest) and abs(P - R) (lowest) in bold."""
    best = {k: (min if k == "gap" else max)(v[k][0] for v in summary.values()) for k in ("f1", "f1_tol2", "gap", "ods_f1")}
    rows = []
    for method, values in summary.items():
        cells = [f"**{m:.3f}** +- {s:.3f}" if len(summary) > 1 and k in best and m == best[k] else f"{m:.3f} +- {s:.3f}"
                 for k, (m, s) in values.items()]
        rows.append([LABELS.get(method, method), *cells])
    return ["method (`crackal train` options)", "precision", "recall", "F1", "F1, 2 px", "abs(P - R)", "ODS-F1"], rows


if __name__ == "__main__":
    main()
