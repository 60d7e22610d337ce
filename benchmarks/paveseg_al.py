"""Multi-class active learning on PaveSeg tiles: does BALD find the rare defect classes faster than random?

    .venv/bin/python benchmarks/paveseg_al.py [--seeds 2] [--jobs 2] [--out runs/bench_paveseg_al]

PaveSeg's 100 images (1280x1080, seven defect classes) with the held-out set of
``paveseg_multiclass.py`` (its 20 test images, seeded split 70 / 10 / 20, seed 0); the other 80
are shrunk 2x (640x540; masks by ``shrink_masks``, so thin cracks survive) and cut into
160x160 tiles (12 an image), left in their natural mix. BALD and random, 16 tiles to start and
16 per round, the schedule of ``crackforest_al.py``. Beside the learning curves it prints the
share of each selected batch holding each defect class, per round, BALD against random: the
question of the multi-class issue. Tables to docs/benchmarks/paveseg_al.md. Skips cleanly
when ../shared/data/paveseg is absent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _al import FINDINGS_HEADER, al_arguments, class_iou_table, findings, paired_rows, simulate_from_arguments  # noqa: E402
from _common import ROOT, dataset_or_skip, hardware, shrink, write_docs  # noqa: E402

from crackal.data.io import mask_png, read_raw_mask, write_png  # noqa: E402
from crackal.data.layout import Pair, load_pair, open_dataset  # noqa: E402
from crackal.data.splits import make_split  # noqa: E402
from crackal.data.transforms import shrink_masks  # noqa: E402

CLASSES = ["background", "crack", "pothole", "sealed_crack", "patch", "alligator_crack", "utility_cover", "expansion_joint"]


def shrunk_images(data: Path, out: Path, factor: int) -> tuple[list[Pair], list[str]]:
    """Every PaveSeg pair shrunk ``factor`` times under ``out``, and the names of the 20 test images
    of ``paveseg_multiclass.py``'s split."""
    pairs, _, _ = open_dataset(data)
    test = make_split([p.name for p in pairs], 10, 20, 0)["test"]
    shrunk = []
    for pair in pairs:
        image_path, mask_path = out / "images" / f"{pair.name}.png", out / "masks" / f"{pair.name}.png"
        if not mask_path.is_file():
            image, mask = load_pair(pair, len(CLASSES))
            height, width = mask.shape[0] // factor * factor, mask.shape[1] // factor * factor
            small = shrink_masks(torch.from_numpy(mask[:height, :width]).long()[None], factor, len(CLASSES))[0].numpy()
            write_png(image_path, shrink(image, factor))
            write_png(mask_path, mask_png(small.astype(np.uint8), len(CLASSES)))
        shrunk.append(Pair(image_path, mask_path))
    return shrunk, test


def pool_class_shares(out: Path) -> dict[str, float]:
    """The share of the pool's tiles holding each defect class (what a random batch holds on average)."""
    pool = json.loads((out / "pool_split.json").read_text())["train"]
    present = np.array([np.isin(np.arange(1, len(CLASSES)), read_raw_mask(out / "pool_tiles" / "masks" / f"{name}.png"))
                        for name in pool])
    return dict(zip(CLASSES[1:], present.mean(0).tolist()))


def batch_share_rows(summary: dict, pool_shares: dict[str, float], initial: int, step: int) -> tuple[list[str], list[list[str]]]:
    """Per strategy and defect class: its share of the pool, the share of each selected batch
    holding it (batch 0 = the initial set, shared by both; mean over seeds) and how many labelled
    tiles hold it after the last batch."""
    rows, batches = [], 0
    for strategy, entry in summary["strategies"].items():
        for name, shares in entry.get("batch_class_images", {}).items():
            batches = max(batches, len(shares))
            held = shares[0] * initial + sum(shares[1:]) * step
            rows.append([strategy, name, f"{pool_shares[name]:.3f}", *[f"{v:.2f}" for v in shares], f"{held:.1f}"])
    return ["run", "class", "share of pool", *[f"batch {b}" for b in range(batches)], "labelled tiles holding it"], rows


def main() -> None:
    parser = al_arguments(__doc__, ROOT / "runs" / "bench_paveseg_al", ["bald", "random"], rounds=6, initial=16, step=16, tile=160)
    parser.set_defaults(seeds=2, crack_free_share=None)
    parser.add_argument("--downscale", type=int, default=2, help="shrink the images this many times first")
    args = parser.parse_args()
    data = dataset_or_skip("paveseg")

    args.out.mkdir(parents=True, exist_ok=True)
    pairs, test = shrunk_images(data, args.out / f"images_{args.downscale}x", args.downscale)
    (args.out / "split.json").write_text(json.dumps({"train": [p.name for p in pairs if p.name not in test], "val": [],
                                                      "test": test}))
    summary = simulate_from_arguments(pairs, args, CLASSES)
    lines, rows = findings(summary)
    entry = summary["strategies"][args.strategies[0]]
    caption = (f"PaveSeg shrunk {args.downscale}x; held out: the {len(test)} test images of paveseg_multiclass.py; pool: "
               f"{entry['pool_size']} tiles of {args.tile} from the other {len(pairs) - len(test)}, "
               f"{summary['pool']['crack_free_share']:.0%} without a defect pixel. Whole-pool F1 (same schedule, mean over the "
               f"defect classes): {summary['reference_f1']:.3f}.")
    shares = batch_share_rows(summary, pool_class_shares(args.out), args.initial, args.step)
    classes = class_iou_table(summary, CLASSES, "defect classes")
    print(f"\nhardware: {hardware()}\n{caption}")
    print("\n".join(lines))
    print("share of each selected batch holding a class (mean over seeds):")
    print("\n".join(" ".join(row) for row in [shares[0], *shares[1]]))
    print("\n".join(" ".join(row) for row in classes[1]))
    print(f"report: {args.out / 'report.md'}")
    write_docs("paveseg_al", caption, (FINDINGS_HEADER, rows), paired_rows(summary), shares,
               classes,
               hardware=hardware())


if __name__ == "__main__":
    main()
