"""What the active-learning benchmarks share: the strategy runs spread over worker processes
(``run_simulation``) and the findings the payoff issue asks for (``findings``)."""

from __future__ import annotations

import argparse
import json
import multiprocessing
from pathlib import Path

import numpy as np

from crackal.active.pairing import paired_baseline, paired_cells
from crackal.active.simulate import reference_f1, simulate, simulation_config, simulation_pool
from crackal.data.layout import Pair
from crackal.metrics.curves import forecast_curve

TARGET_SHARE, TARGET_VS_RANDOM, FORECAST_AT = 0.20, 0.60, 0.30  # issue 29: 95 % of the whole pool at <= 20 % of it


def al_arguments(doc: str, out: Path, strategies: list[str], *, rounds: int, initial: int, step: int,
                 tile: int) -> argparse.ArgumentParser:
    """The options both active-learning benchmarks take, with their defaults."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", type=Path, default=out)
    parser.add_argument("--strategies", nargs="+", default=strategies)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--initial", type=int, default=initial)
    parser.add_argument("--step", type=int, default=step)
    parser.add_argument("--tile", type=int, default=tile)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--arch", default="default", help="default: the default model (ImageNet Lite0 U-Net); unet: the compact U-Net")
    parser.add_argument("--base-channels", type=int, default=8, help="--arch unet: U-Net width (8: a quarter of its default cost)")
    parser.add_argument("--crack-free-share", type=float, default=0.5)
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (one torch thread each)")
    return parser


def round_training(args: argparse.Namespace, class_names: list[str]) -> dict:
    """The rounds' training options from ``al_arguments``."""
    model = {"arch": "unet", "base_channels": args.base_channels} if args.arch == "unet" else {}
    return {"samples_per_epoch": 64, "crop_size": args.crop, "batch_size": 8, "class_names": class_names, **model}


def _print_round(item) -> None:
    print(item if isinstance(item, str) else
          f"  {item.round}: {item.labelled} labelled, F1 {item.metrics['strict']['f1']:.3f}", flush=True)


def _work(task: tuple) -> None:
    kind, args, kwargs = task
    if kind == "reference":
        reference_f1(*args, **kwargs)
    else:
        simulate(*args, **kwargs, on_round=_print_round)


def run_simulation(pairs: list[Pair], out: Path, strategies: list[str], *, seeds: int, rounds: int, jobs: int,
                   split_file: Path, tile: int | None, crack_free_share: float | None, train: dict, **options) -> dict:
    """Every strategy x seed run and the whole-pool reference, each a task for one of ``jobs``
    processes of one torch thread (finished runs are kept, so a second call resumes; a strategy's
    run copies round 1 from a run of its seed that has trained it), then the report; returns
    report.json's summary."""
    out.mkdir(parents=True, exist_ok=True)
    train = {**train, "threads": 1}
    base = simulation_config(train, **options)
    pool, held, _ = simulation_pool(pairs, out, base, split_file=split_file, tile=tile, crack_free_share=crack_free_share)
    pool_split = out / "pool_split.json"  # the tiles, mixed once here, so that the workers share them
    pool_split.write_text(json.dumps({"train": [p.name for p in pool], "val": [], "test": [p.name for p in held]}))
    common = {"seeds": seeds, "rounds": rounds, "split_file": pool_split, "crack_free_share": crack_free_share,
              "train": train, **options}
    tasks = [("reference", (pool, held, base, out), {})]  # the longest task first
    tasks += [("runs", (pool + held, out, [strategy]), {**common, "seeds": seed + 1, "first_seed": seed, "reference": False})
              for strategy in strategies for seed in range(seeds)]
    with multiprocessing.get_context("spawn").Pool(jobs) as workers:
        list(workers.imap_unordered(_work, tasks))
    simulate(pool + held, out, strategies, **common)  # everything is done: collects the runs and writes the report
    return json.loads((out / "report.json").read_text())


def simulate_from_arguments(pairs: list[Pair], args: argparse.Namespace, class_names: list[str],
                            round_steps: str | None = "auto") -> dict:
    """``run_simulation`` with the options of ``al_arguments``, the split in ``args.out/split.json``."""
    return run_simulation(
        pairs, args.out, args.strategies, seeds=args.seeds, rounds=args.rounds, jobs=args.jobs,
        split_file=args.out / "split.json", tile=args.tile, crack_free_share=args.crack_free_share,
        train=round_training(args, class_names), initial=args.initial, query_size=args.step, round_steps=round_steps,
    )


def class_iou_table(summary: dict, class_names: list[str], defects: str) -> tuple[list[str], list[list[str]]]:
    """The docs table of each run's last-round arg-max IoU: the mean over ``defects`` and each defect class."""
    rows = [[s, f"{e['final_miou_defects']:.3f}"] + [f"{e['final_class_iou'][n]:.3f}" for n in class_names[1:]]
            for s, e in summary["strategies"].items() if "final_miou_defects" in e]
    return ["run", f"mIoU ({defects}), last round"] + [f"{n} IoU" for n in class_names[1:]], rows


def findings(summary: dict, supervised_f1: float | None = None) -> tuple[list[str], list[list]]:
    """The lines to print and the docs table: per strategy the labels to 95 % of the whole-pool F1
    (share of the pool, ratio to random with the same start), the forecast fitted to the rounds up
    to 30 % of the pool against the F1 the whole pool reached, and the issue's targets."""
    reference = summary["reference_f1"]
    entries = summary["strategies"]
    lines, rows = [], []
    for strategy, e in entries.items():
        x, f1 = np.array(e["labelled"]), np.array(e["f1_mean"])
        early = x <= FORECAST_AT * e["pool_size"]
        found = forecast_curve(x[early], f1[early], e["pool_size"])
        forecast = "-" if found is None else f"{found.score_at_pool:.3f}" + (
            f" [{found.score_interval[0]:.3f}, {found.score_interval[1]:.3f}]" if found.score_interval else "")
        needed, ratio = e.get("labels_to_target"), e.get("labels_vs_random")
        share = f"{needed} ({needed / e['pool_size']:.0%})" if needed else "not reached"
        baseline = paired_baseline(strategy, entries)
        vs = f"{ratio:.2f} x {baseline}" if ratio and strategy != baseline else "-"
        rows.append([strategy, f"{e['f1_mean'][-1]:.3f} at {e['labelled'][-1]}", f"{e['curve_area']:.3f}", share, vs,
                     f"{forecast} from {int(early.sum())} rounds"])
        lines.append(f"{strategy:13s} final F1 {e['f1_mean'][-1]:.3f} at {e['labelled'][-1]} labels; 95 % of reference: "
                     f"{share}, vs random {vs}; forecast from rounds <= {FORECAST_AT:.0%} of the pool: {forecast} "
                     f"(reached with the whole pool: {reference:.3f})")
    for strategy in (s for s in ("bald", "bald+warm") if s in entries):
        e = entries[strategy]
        needed, ratio = e.get("labels_to_target"), e.get("labels_vs_random")
        held = bool(needed and needed <= TARGET_SHARE * e["pool_size"] and ratio and ratio <= TARGET_VS_RANDOM)
        lines.append(f"target ({strategy}: 95 % with <= {TARGET_SHARE:.0%} of the pool and <= {TARGET_VS_RANDOM} x random's "
                     f"labels): {'met' if held else 'not met'}")
    if supervised_f1:
        gap = reference - supervised_f1
        lines.append(f"whole-pool F1 {reference:.3f} vs supervised {supervised_f1:.3f}: {gap:+.3f} "
                     f"({'within' if abs(gap) <= 0.03 else 'not within'} 0.03)")
    return lines, rows


FINDINGS_HEADER = ["run", "final F1 at labels", "curve area", "labels to 95 % of whole pool (share)", "vs random",
                   "forecast at whole pool from rounds <= 30 % [95 %]"]


def paired_rows(summary: dict) -> tuple[list[str], list[list]]:
    """The docs table of each run minus its random baseline, paired by seed: mean [95 % interval]."""
    paired = summary["paired_vs_random"]
    header = paired_cells(next(iter(paired.values())))[0] if paired else []
    rows = [[f"{s} - {p['baseline']}"] + paired_cells(p)[1] for s, p in paired.items()]
    return ["paired by seed, labelled:"] + header, rows
