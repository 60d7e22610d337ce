"""Change-detection active learning on synthetic bi-temporal pairs: ensemble variance,
MC-BatchNorm variance, MC-BatchNorm entropy and random acquisition, 3 seeds.

    PYTHONPATH=. .venv/bin/python benchmarks/change_al.py [--seeds 3] [--rounds 11] [--out runs/bench_change_al]

Pool: synthetic pairs (crack growth, new cracks, sealing; other light and a slight
misregistration between the dates) cut into tiles, labelled by the 1 % / 3 % rule (ignored
tiles dropped); changes are rare. Test: tiles of other pairs, as many changed as unchanged.
Each run starts from a balanced set and labels ``--step`` tiles per round; the reference is
the same recipe trained on every pool tile. Finished rounds are kept: run it again to resume.
The table goes to docs/benchmarks/change_al.md.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import ROOT, hardware, write_docs  # noqa: E402

from crackal.change.api import DEFAULT_RUNS  # noqa: E402
from crackal.change.simulate import simulate_change  # noqa: E402
from crackal.change.train import ChangeTrainConfig  # noqa: E402
from crackal.data.bitemporal import balanced_subset, cut_tiles  # noqa: E402
from crackal.data.synth_change import ChangeOptions, synth_change_pair  # noqa: E402


def make_tiles(pairs: int, size: int, tile: int, seed: int, options: ChangeOptions):
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(pairs):
        pair = synth_change_pair(rng, (size, size), options)
        samples.append({"image": np.concatenate([pair["image_a"], pair["image_b"]], 2), "mask": pair["mask"], "name": f"s{seed}_{i:03d}"})
    return cut_tiles(samples, tile)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_change_al")
    parser.add_argument("--strategies", nargs="+", default=list(DEFAULT_RUNS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--initial", type=int, default=10, help="changed tiles in the balanced start (and as many unchanged)")
    parser.add_argument("--step", type=int, default=10)
    parser.add_argument("--pairs", type=int, default=24)
    parser.add_argument("--test-pairs", type=int, default=40)
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--tile", type=int, default=32)
    parser.add_argument("--change-probability", type=float, default=0.6)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    options = ChangeOptions(change_probability=args.change_probability, max_changes=2)
    pool = make_tiles(args.pairs, args.size, args.tile, 0, options).labelled()
    test = balanced_subset(make_tiles(args.test_pairs, args.size, args.tile, 1, options).labelled(), seed=0)
    print(f"pool: {len(pool)} tiles {args.tile}x{args.tile}, {pool.changed_share():.1%} changed; "
          f"test: {len(test)} tiles (balanced)", flush=True)
    report = simulate_change(pool, test, args.out, args.strategies, args.seeds, progress=lambda m: print(m, flush=True),
                             initial_per_class=args.initial, query_size=args.step, rounds=args.rounds,
                             train=ChangeTrainConfig(steps=args.steps))
    summary = json.loads((args.out / "report.json").read_text())
    ref = summary["reference_auc"]
    print(f"\nhardware: {hardware()}")
    print(f"reference AUC (all {len(pool)} pool tiles labelled, same recipe, mean of seeds): {ref:.4f}")
    print(f"{'strategy':24s} {'tiles to ref AUC':>18s} {'final AUC':>10s} {'curve area':>11s} {'changed share (first/last)':>28s}")
    for name, e in summary["strategies"].items():
        reached = f"{e['tiles_to_reference']} ({e['share_of_pool_to_reference']:.0%})" if e["tiles_to_reference"] else "not reached"
        print(f"{name:24s} {reached:>18s} {e['auc_mean'][-1]:>10.4f} {e['curve_area']:>11.4f} "
              f"{e['changed_share_mean'][0]:>13.2f} / {e['changed_share_mean'][-1]:.2f}")
    print(f"report: {report}")
    write_docs("change_al", *docs_parts(summary, args, len(pool), pool.changed_share(), len(test)), hardware=hardware())


POINTS = (20, 40, 60, 80, 100, 120)  # labelled tiles shown in the docs table (all of them when none of these is reached)


def docs_parts(summary: dict, args, pool_tiles: int, pool_share: float, test_tiles: int) -> list:
    """The docs page's caption and table from report.json and each run's state.json (round times)."""
    entries = summary["strategies"]
    any_entry = next(iter(entries.values()))
    points = [n for n in any_entry["labelled"] if n in POINTS] or any_entry["labelled"]
    seeds = max(e["seeds"] for e in entries.values())
    rows, spread = [], []
    for name, e in entries.items():
        states = [json.loads(f.read_text()) for f in sorted((args.out / name).glob("seed*/state.json"))]
        size = states[0]["config"].get("ensemble_size") if states else None
        label = {"ensemble-variance": f"ensemble variance (M = {size})", "ensemble-entropy": f"ensemble entropy (M = {size})",
                 "mc_batchnorm-variance": "MC-BatchNorm variance", "mc_batchnorm-entropy": "MC-BatchNorm entropy"}.get(name, name)
        auc, share = dict(zip(e["labelled"], e["auc_mean"])), dict(zip(e["labelled"], e["changed_share_mean"]))
        needed = e["tiles_to_reference"]
        minutes = np.mean([sum(r["seconds"] for r in st["rounds"]) for st in states]) / 60 if states else None
        rows.append([label, " / ".join(f"{auc[n]:.3f}" for n in points), f"{e['curve_area']:.3f}",
                     f"{needed} ({e['share_of_pool_to_reference'] * 100:.0f} %)" if needed else "not reached",
                     " / ".join(f"{share[n] * 100:.0f}" for n in points) + " %",
                     "-" if minutes is None else f"{minutes:.1f}"])
        spread.append(f"{e['auc_std'][-1]:.3f} ({label})")
    reference = summary.get("reference_auc")
    caption = (f"Pool: {pool_tiles} tiles of {args.tile}x{args.tile}, {pool_share * 100:.1f} % changed; test: {test_tiles} "
               f"tiles (balanced). " + (f"Reference (all pool tiles, same recipe, mean of {seeds} seeds): AUC {reference:.3f}. "
                                       if reference is not None else "") + f"Mean of {seeds} seeds.")
    header = ["strategy", f"AUC at {' / '.join(map(str, points))} tiles", "AUC area", "tiles to reference AUC",
              f"changed tiles in the labelled set at {' / '.join(map(str, points))}", "minutes per run"]
    spread_line = f"Standard deviation over seeds at {any_entry['labelled'][-1]} tiles: {', '.join(spread)}."
    return [caption, (header, rows), spread_line]


if __name__ == "__main__":
    main()
