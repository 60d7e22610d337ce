"""CrackForest: crack instances and their length by type, predicted against the ground truth.

    .venv/bin/python benchmarks/crackforest_defects.py [--run runs/bench_crackforest] [--minutes 8]

The model is the U-Net of benchmarks/crackforest_supervised.py (``--run``) when that run
exists; otherwise the default compact U-Net is trained here on the same split (70 train /
10 validation / 38 test, seed 0) for ``--minutes`` (a short budget: say so when quoting the
figure). On the 38 test images the defects (``crackal.inference.defects``, default options:
5 px gap, 10 px minimum length, direction of travel up the image, no GSD) are extracted from
the predicted masks (threshold chosen on validation) and from the ground-truth masks.
Printed per type and in total: instance counts and total centre-line length from each, and
the length error in percent, (predicted - ground truth) / ground truth, pooled over the test
images; and the mean absolute per-image length error. The table goes to
docs/benchmarks/crackforest_defects.md. Skips cleanly when ../shared/data/crackforest is absent.

``--degraded`` needs no model: the "prediction" is the ground truth itself, degraded the way
a segmentation model errs (seeded): outline noise of one pixel (30 % of the pixels next to a
crack added, 20 % of its outline pixels not on the centre line removed), breaks of about
3 px every 60 px of centre line, and specks of 1-4 px (one per 10,000 px). It measures how
well the instance and length pipeline (gap bridging, speck filtering, spur pruning) recovers
the ground truth's figures from a typical prediction's errors, not a model.
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

TYPES = ("longitudinal", "transverse", "diagonal", "block", "alligator")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "bench_crackforest")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_crackforest_defects")
    parser.add_argument("--minutes", type=float, default=8.0, help="training budget when --run is absent")
    parser.add_argument("--degraded", action="store_true", help="no model: the ground truth degraded (see above)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = dataset_or_skip("crackforest")

    import numpy as np

    from crackal.data.io import read_raw_mask
    from crackal.data.layout import open_dataset
    from crackal.data.splits import load_split, pick
    from crackal.inference.defects import DefectOptions, extract_defects

    started = time.perf_counter()
    if args.degraded:
        return degraded(data, args, started)
    run = args.run
    trained_here = False
    if not (run / "checkpoints" / "best.pt").is_file():
        run = args.out / "run"
        if not (run / "checkpoints" / "best.pt").is_file():
            api.train(data, run, val=10, test=38, seed=0, epochs=120, ema_decay=0.995, time_limit_min=args.minutes,
                      progress=False)
        trained_here = True
    history = json.loads((run / "metrics.json").read_text())["history"]
    pairs, _, _ = open_dataset(data)
    test = pick(pairs, load_split(run / "split.json")["test"], "test")
    images = args.out / "test_images"
    images.mkdir(parents=True, exist_ok=True)
    for pair in test:
        link = images / pair.image.name
        if not link.exists():
            link.symlink_to(pair.image.resolve())
    options = DefectOptions()
    predicted_dir = args.out / "predicted"
    api.predict(run, images, predicted_dir, defects=options, progress=False)
    predicted = json.loads((predicted_dir / "defects.json").read_text())["defects"]
    truth = []
    for pair in test:
        mask = (read_raw_mask(pair.mask) > 0).astype(np.uint8)
        truth += [{"image": pair.image.name, **d} for d in extract_defects(mask, ["background", "crack"], options)]

    rows, mean_abs = compare(predicted, truth, [p.image.name for p in test])
    total = rows[-1]
    f1 = f", validation F1 {max(h.get('val_f1') or 0 for h in history):.3f}"
    model = (f"the compact U-Net trained here for {args.minutes:g} min ({len(history)} epochs{f1})" if trained_here
             else f"the U-Net of {run} ({len(history)} epochs{f1})")
    summary = (f"38 CrackForest test images, {model}: total crack length {total['length px (predicted)']:.0f} px predicted "
               f"against {total['length px (ground truth)']:.0f} px in the ground truth, error "
               f"{total['length error %']:+.1f} %; {total['instances (predicted)']} instances against "
               f"{total['instances (ground truth)']}; mean absolute per-image length error {mean_abs:.1f} %.")
    print(json.dumps(rows, indent=1))
    print(summary)
    write_docs("crackforest_defects", rows, summary + f" Wall time {time.perf_counter() - started:.0f} s.",
               hardware=hardware(), block="model")


def compare(predicted: list[dict], truth: list[dict], names: list[str]) -> tuple[list[dict], float]:
    """Rows per type (and all cracks): counts, total lengths, length error in %; and the mean
    absolute per-image length error in %."""
    import numpy as np

    def totals(defects, kind=None):
        chosen = [d for d in defects if kind is None or d["type"] == kind]
        return len(chosen), sum(d["length_px"] for d in chosen)

    rows = []
    for kind in (*TYPES, None):
        n_pred, len_pred = totals(predicted, kind)
        n_true, len_true = totals(truth, kind)
        rows.append({
            "type": kind or "all cracks",
            "instances (ground truth)": n_true,
            "instances (predicted)": n_pred,
            "length px (ground truth)": round(len_true, 1),
            "length px (predicted)": round(len_pred, 1),
            "length error %": round(100 * (len_pred - len_true) / len_true, 1) if len_true else None,
        })
    per_image = []
    for name in names:
        true_len = sum(d["length_px"] for d in truth if d["image"] == name)
        pred_len = sum(d["length_px"] for d in predicted if d["image"] == name)
        if true_len:
            per_image.append(abs(pred_len - true_len) / true_len)
    return rows, 100 * float(np.mean(per_image))


def degrade(mask, rng):
    """The ground truth with a segmentation model's kind of errors (see the module docstring)."""
    import numpy as np
    from scipy import ndimage
    from skimage.morphology import skeletonize

    mask = mask.astype(bool)
    square = np.ones((3, 3), bool)
    skeleton = skeletonize(mask)
    grown = ndimage.binary_dilation(mask, structure=square) & ~mask
    outline = mask & ~ndimage.binary_erosion(mask, structure=square) & ~skeleton
    out = mask | (grown & (rng.random(mask.shape) < 0.3))
    out &= ~(outline & (rng.random(mask.shape) < 0.2))
    rows, cols = np.nonzero(skeleton)
    breaks = rng.random(len(rows)) < 1 / 60
    cut = np.zeros_like(mask)
    cut[rows[breaks], cols[breaks]] = True
    out &= ~ndimage.binary_dilation(cut, structure=square)
    specks = ndimage.binary_dilation(rng.random(mask.shape) < 1e-4, structure=np.ones((2, 2), bool))
    specks &= rng.random(mask.shape) < 0.7
    return (out | specks).astype(np.uint8)


def degraded(data: Path, args, started: float) -> None:
    import numpy as np

    from crackal.data.io import read_raw_mask
    from crackal.data.layout import open_dataset
    from crackal.data.splits import make_split, pick
    from crackal.inference.defects import DefectOptions, extract_defects

    pairs, _, _ = open_dataset(data)
    split = make_split([p.name for p in pairs], 10, 38, 0)  # the supervised benchmark's split
    test = pick(pairs, split["test"], "test")
    rng = np.random.default_rng(args.seed)
    options = DefectOptions()
    truth, predicted = [], []
    for pair in test:
        mask = (read_raw_mask(pair.mask) > 0).astype(np.uint8)
        truth += [{"image": pair.image.name, **d} for d in extract_defects(mask, ["background", "crack"], options)]
        predicted += [{"image": pair.image.name, **d} for d in extract_defects(degrade(mask, rng), ["background", "crack"], options)]
    rows, mean_abs = compare(predicted, truth, [p.image.name for p in test])
    total = rows[-1]
    summary = (f"38 CrackForest test images, no model: the ground truth against itself degraded (outline noise, "
               f"3 px breaks every ~60 px, specks; seed {args.seed}): total crack length "
               f"{total['length px (predicted)']:.0f} px against {total['length px (ground truth)']:.0f} px, error "
               f"{total['length error %']:+.1f} %; {total['instances (predicted)']} instances against "
               f"{total['instances (ground truth)']}; mean absolute per-image length error {mean_abs:.1f} %.")
    print(json.dumps(rows, indent=1))
    print(summary)
    write_docs("crackforest_defects", rows, summary + f" Wall time {time.perf_counter() - started:.0f} s.",
               hardware=hardware(), block="degraded")


if __name__ == "__main__":
    main()
