"""Cost-aware acquisition against labelling time: random, BALD and cost-aware BALD on CrackForest, road frames, F1 against simulated time.

    .venv/bin/python benchmarks/cost_aware_al.py [--datasets crackforest road_potholes] [--seeds 3] [--jobs 2]

The simulated labeller takes ``crackal.acquisition.cost.SIMULATED_COST`` seconds per image:
10 s + 0.08 s per pixel of crack skeleton + 6 s per connected defect region of the ground
truth (an assumption, stated in that module). ``bald+cost`` divides each BALD score by the
image's predicted seconds: a non-negative least-squares fit of the labels' seconds on their
skeleton length, region count and area, applied to the features of each pool image's
predicted mask (the constant ``seconds_per_image`` before 10 labels are timed, i.e. in round 1).

The pools are those of ``crackforest_al.py`` (the 80 training + validation images cut into
160x160 tiles, half of them crack-free; held out: 38 test images) and of
``road_potholes_al.py`` (every 8th frame of each segment shrunk 2x, cut into 156x156 tiles,
half without a defect; held out: whole road segments). CPU-sized schedule: the default model
(ImageNet Lite0 U-Net), a fixed ``--round-steps`` of 32 optimiser steps per round on crops of
128, no stop set; CrackForest 10 tiles to start (enough timed labels to fit the cost model
from round 1) and 10 per round for 4 rounds, road frames 16 and 16 for 3 rounds; one task
per dataset and seed, spread over ``--jobs`` processes of one torch thread. Each run's F1 is
interpolated at equal labelling hours (``crackal.active.time_curves``), differences paired by
seed. Finished runs are kept: starting it again resumes. Tables and plots go to
docs/benchmarks/cost_aware_al.md.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np  # noqa: E402
from _common import ROOT, SHARED_DATA, hardware, write_docs  # noqa: E402

from crackal.acquisition.cost import SIMULATED_COST  # noqa: E402
from crackal.active.store import ProjectStore  # noqa: E402

STRATEGIES = ["random", "bald", "bald+cost"]
DATASETS = {  # folder under ../shared/data, tile, initial, step, rounds
    "crackforest": {"folder": "crackforest", "tile": 160, "initial": 10, "step": 10, "rounds": 4},
    "road_potholes": {"folder": "road_cracks_potholes", "tile": 156, "initial": 16, "step": 16, "rounds": 3},
}


def prepare(dataset: str, out: Path, every: int) -> tuple[list, list[str], str]:
    """The dataset's pairs, class names and a caption of its split (the split written to ``out/split.json``)."""
    data = SHARED_DATA / DATASETS[dataset]["folder"]
    out.mkdir(parents=True, exist_ok=True)
    if dataset == "crackforest":
        from crackal.data.layout import open_dataset
        from crackal.data.splits import make_split, save_split

        pairs, names, _ = open_dataset(data)
        save_split(make_split([p.name for p in pairs], val=10, test=38, seed=0), out / "split.json")
        return pairs, names, "the 80 training + validation images of CrackForest in tiles; held out: the 38 test images, whole"
    from road_potholes_al import shrunk_frames

    from crackal.data.splits import make_group_split, save_split

    pairs, groups = shrunk_frames(data, out / "frames", every)
    split = make_group_split(groups, val=0, test=0.2, seed=0)
    save_split(split, out / "split.json")
    segments = len({groups[n] for n in split["test"]})
    return pairs, json.loads((data / "classes.json").read_text()), (
        f"{len(pairs)} road frames (every {every}th of each segment, shrunk 2x) in tiles; held out: "
        f"{len(split['test'])} frames of {segments} whole road segments")


def options(args: argparse.Namespace, dataset: str, names: list[str]) -> dict:
    """The ``simulate`` options of a dataset (its pool already cut and mixed by ``pool_pairs``)."""
    schedule = DATASETS[dataset]
    train = {"samples_per_epoch": 64, "crop_size": 128, "batch_size": 8, "class_names": names, "threads": 1}
    return {"seeds": args.seeds, "rounds": args.rounds or schedule["rounds"], "crack_free_share": 0.5, "reference": False,
            "train": train, "initial": schedule["initial"], "query_size": schedule["step"], "round_steps": args.round_steps,
            "stop_set_size": 0}


def pool_pairs(args: argparse.Namespace, dataset: str, pairs: list, names: list[str], out: Path) -> list:
    """The pool cut into tiles and mixed once, here (the worker processes share it; its split in
    ``out/pool_split.json``), and the held-out pairs after it."""
    from crackal.active.simulate import simulation_config, simulation_pool

    kwargs = options(args, dataset, names)
    base = simulation_config(kwargs["train"], initial=kwargs["initial"], query_size=kwargs["query_size"])
    pool, held, _ = simulation_pool(pairs, out, base, split_file=out / "split.json", tile=DATASETS[dataset]["tile"],
                                    crack_free_share=kwargs["crack_free_share"])
    (out / "pool_split.json").write_text(json.dumps({"train": [p.name for p in pool], "val": [], "test": [p.name for p in held]}))
    return pool + held


def _print_round(item) -> None:
    print(item if isinstance(item, str) else
          f"  {item.round}: {item.labelled} labelled, F1 {item.metrics['strict']['f1']:.3f}", flush=True)


def _run(task: tuple) -> Path:
    from crackal.active.simulate import simulate

    pairs, out, strategies, kwargs = task
    return simulate(pairs, out, strategies, split_file=out / "pool_split.json", on_round=_print_round, **kwargs)


def batch_seconds(root: Path) -> dict:
    """Of one run: the mean simulated seconds of the images each round selected (after the first
    batch), and for a cost-aware run the predicted / simulated seconds of its batches."""
    store = ProjectStore(root)
    try:
        efforts, rounds = store.label_efforts(), store.rounds()
    finally:
        store.close()
    later = [e["active_seconds"] for e in efforts if e["round"] > 0]
    predicted, actual = 0.0, 0.0
    for r in rounds:
        cost = (r["metrics"] or {}).get("cost_model") or {}
        batch = [e["active_seconds"] for e in efforts if e["round"] == r["round"] + 1]
        if cost.get("source") == "measured" and batch and len(batch) == len(cost.get("selected_seconds", [])):
            predicted, actual = predicted + sum(cost["selected_seconds"]), actual + sum(batch)
    return {"selected_seconds": float(np.mean(later)) if later else None,
            "predicted_ratio": predicted / actual if actual else None}


def docs_parts(dataset: str, out: Path, summary: dict, histories: dict, caption: str, args: argparse.Namespace) -> list:
    """The page block of one dataset: caption, plot, F1 at equal hours, paired differences, per-image view."""
    from crackal.active.time_curves import duration, plot_time_curves, time_tables

    schedule = {**DATASETS[dataset], "rounds": args.rounds or DATASETS[dataset]["rounds"]}
    by_time = summary["by_time"]
    hours = by_time["hours"]
    minutes = hours[-1] < 2
    entries = summary["strategies"]
    any_entry = next(iter(entries.values()))
    plot = out / "f1_against_time.png"  # with the run, not in the repository
    plot_time_curves(histories, plot, f"{dataset}: held-out F1 against simulated labelling time")
    per_run = {s: [batch_seconds(out / s / f"seed{seed}") for seed in range(len(histories[s]))] for s in histories}
    text = (f"{caption}; pool: {any_entry['pool_size']} tiles of {schedule['tile']}, "
            f"{summary['pool']['crack_free_share']:.0%} without a defect pixel. {schedule['initial']} tiles to start, "
            f"{schedule['step']} per round, {schedule['rounds']} rounds, {args.round_steps} steps per round. "
            f"F1 interpolated at {len(hours)} equal simulated labelling times after the first round (+0 to "
            f"+{duration(hours[-1], minutes)}, the least any run labelled after its first round); area = mean F1 over that "
            "span. Mean [95 % interval] over seeds.")
    rows = []
    for strategy, e in entries.items():
        runs = per_run[strategy]
        selected = [r["selected_seconds"] for r in runs if r["selected_seconds"] is not None]
        ratios = [r["predicted_ratio"] for r in runs if r["predicted_ratio"] is not None]
        rows.append([strategy, " / ".join(f"{v:.3f}" for v in e["f1_mean"]), f"{e['curve_area']:.3f}",
                     f"{np.mean(selected):.1f}" if selected else "-",
                     f"{np.mean(ratios):.2f}" if ratios else "-"])
    per_image = (["strategy", f"F1 at {' / '.join(map(str, any_entry['labelled']))} labels", "curve area (per image)",
                  "simulated s per selected tile", "predicted / simulated s of its batches"], rows)
    shown = plot.resolve().relative_to(ROOT) if plot.resolve().is_relative_to(ROOT) else plot
    return [text, f"The curves of F1 against labelling time: `{shown}` (written by the run, not tracked).",
            *time_tables(by_time), per_image]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_cost_aware_al")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--strategies", nargs="+", default=STRATEGIES)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default: 4 CrackForest, 3 road frames)")
    parser.add_argument("--round-steps", type=int, default=32, help="optimiser steps per round")
    parser.add_argument("--every", type=int, default=8, help="road frames: keep every n-th frame of each segment")
    parser.add_argument("--jobs", type=int, default=2, help="processes of one torch thread (tasks: a dataset and seed each)")
    args = parser.parse_args()

    prepared = {}
    for dataset in args.datasets:
        if not (SHARED_DATA / DATASETS[dataset]["folder"]).is_dir():
            print(f"skip {dataset}: {SHARED_DATA / DATASETS[dataset]['folder']} not found (set CRACKAL_DATA)")
            continue
        out = args.out / dataset
        pairs, names, caption = prepare(dataset, out, args.every)
        prepared[dataset] = (pool_pairs(args, dataset, pairs, names, out), out, names, caption)
    if not prepared:
        return
    tasks = [(pairs, out, args.strategies, {**options(args, d, names), "first_seed": seed, "seeds": seed + 1})
             for d, (pairs, out, names, _) in prepared.items() for seed in range(args.seeds)]  # one task a dataset and seed
    if args.jobs > 1 and len(tasks) > 1:
        with multiprocessing.get_context("spawn").Pool(min(args.jobs, len(tasks))) as workers:
            list(workers.imap_unordered(_run, tasks))
    else:
        for task in tasks:
            _run(task)
    from crackal.active.report import project_history

    for dataset, (pairs, out, names, caption) in prepared.items():
        _run((pairs, out, args.strategies, options(args, dataset, names)))  # all done: collects the runs, writes report.md
        summary = json.loads((out / "report.json").read_text())
        histories = {s: [project_history(out / s / f"seed{seed}") for seed in range(args.seeds)] for s in args.strategies}
        if not summary.get("by_time"):
            print(f"{dataset}: the runs carry no labelling times")
            continue
        parts = docs_parts(dataset, out, summary, histories, caption, args)
        for part in parts:
            if isinstance(part, tuple):
                print("\n".join(" | ".join(row) for row in part[1]))
        write_docs("cost_aware_al", *parts, block=dataset, hardware=hardware())
    print(f"simulated cost: {SIMULATED_COST}; reports: {args.out}/<dataset>/report.md")


if __name__ == "__main__":
    main()
