"""Active learning on road survey frames (cracks and potholes): BALD against random, from scratch and warm-started, held-out road segments.

    .venv/bin/python benchmarks/road_potholes_al.py [--seeds 3] [--jobs 2] [--every 8] [--out runs/bench_road_potholes_al]

``road_cracks_potholes`` holds 754 forward-view frames of 28 road segments; frames of one
segment are 15 m apart and look alike, so the held-out set is whole segments (about 20 % of
the frames, ``make_group_split``, seed 0), never random frames. Every ``--every``-th frame of
each segment is kept, shrunk 2x (512x320); the pool frames are cut into 156x156 tiles and mixed
so that half hold no defect pixel (a forward view is mostly road and verge). Three classes
(background, crack, pothole); the held-out F1 is the mean over crack and pothole. The
schedule of ``crackforest_al.py`` (steps that grow with the labels), with 16 tiles to start
and 16 per round for 6 rounds. Prints what ``crackforest_al.py`` prints; tables to docs/benchmarks/road_potholes_al.md.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from _al import FINDINGS_HEADER, al_arguments, class_iou_table, findings, paired_rows, simulate_from_arguments  # noqa: E402
from _common import ROOT, dataset_or_skip, hardware, shrink, write_docs  # noqa: E402

from crackal.data.io import mask_png, read_image, read_raw_mask, write_png  # noqa: E402
from crackal.data.layout import Pair  # noqa: E402
from crackal.data.splits import make_group_split, save_split  # noqa: E402

STRATEGIES = ["bald", "random", "bald+warm", "random+warm"]


def shrunk_frames(data: Path, out: Path, every: int) -> tuple[list[Pair], dict[str, str]]:
    """Every ``every``-th frame of each segment, shrunk 2x (images by 2x2 means, masks by taking
    one pixel of four), under ``out``; and each kept frame's segment."""
    with open(data / "groups.csv", newline="") as file:
        rows = sorted(csv.DictReader(file), key=lambda r: (r["segment"], r["image"]))
    by_segment: dict[str, list[dict]] = {}
    for row in rows:
        by_segment.setdefault(row["segment"], []).append(row)
    kept = [row for frames in by_segment.values() for row in frames[::every]]
    pairs, groups = [], {}
    for row in kept:
        stem = Path(row["image"]).stem
        image_path, mask_path = out / "images" / f"{stem}.png", out / "masks" / f"{stem}.png"
        if not mask_path.is_file():
            image = read_image(data / "images" / row["image"])
            write_png(image_path, shrink(image, 2))
            mask = read_raw_mask(data / "masks" / f"{stem}.png")[:image.shape[0] // 2 * 2:2, :image.shape[1] // 2 * 2:2]
            write_png(mask_path, mask_png(mask, 3))
        pairs.append(Pair(image_path, mask_path))
        groups[stem] = row["segment"]
    return pairs, groups


def main() -> None:
    parser = al_arguments(__doc__, ROOT / "runs" / "bench_road_potholes_al", STRATEGIES, rounds=6, initial=16, step=16,
                          tile=156)  # 6 tiles per shrunk frame
    parser.add_argument("--every", type=int, default=8, help="keep every n-th frame of each segment")
    args = parser.parse_args()
    data = dataset_or_skip("road_cracks_potholes")

    args.out.mkdir(parents=True, exist_ok=True)
    pairs, groups = shrunk_frames(data, args.out / "frames", args.every)
    split = make_group_split(groups, val=0, test=0.2, seed=0)
    save_split(split, args.out / "split.json")
    held_segments = sorted({groups[n] for n in split["test"]})
    print(f"{len(pairs)} frames of {len(set(groups.values()))} segments; held out: {len(split['test'])} frames of "
          f"segments {', '.join(held_segments)}", flush=True)
    names = json.loads((data / "classes.json").read_text())
    summary = simulate_from_arguments(pairs, args, names)
    lines, rows = findings(summary)
    any_entry = summary["strategies"][args.strategies[0]]
    caption = (f"{len(pairs)} frames (every {args.every}th of each segment, shrunk 2x); held out: {len(split['test'])} frames "
               f"of {len(held_segments)} whole segments; pool: {any_entry['pool_size']} tiles of {args.tile}, "
               f"{summary['pool']['crack_free_share']:.0%} without a defect pixel. Whole-pool F1 (same schedule, mean "
               f"over crack and pothole): {summary['reference_f1']:.3f}.")
    print(f"\nhardware: {hardware()}\n{caption}")
    print("\n".join(lines))
    classes = class_iou_table(summary, names, "crack, pothole")
    if classes[1]:
        print("\n".join(" ".join(row) for row in classes[1]))
    print(f"report: {args.out / 'report.md'}")
    write_docs("road_potholes_al", caption, (FINDINGS_HEADER, rows), paired_rows(summary),
               classes,
               "\n".join(f"- {line}" for line in lines if line.startswith("target")), hardware=hardware())


if __name__ == "__main__":
    main()
