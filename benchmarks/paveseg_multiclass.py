"""Multi-class road defects on PaveSeg: per-class IoU, F1 and defect-area error.

    .venv/bin/python benchmarks/paveseg_multiclass.py [--epochs 40] [--minutes 30] [--out runs/bench_paveseg]
    # latest README run: --downscale 4 --crop-size 768 --tile-size 1280 --val-interval 5 --epochs 110 --minutes 45 --threads 1
    .venv/bin/python benchmarks/paveseg_multiclass.py --variant class_aware --out runs/bench_paveseg_class_aware

``--variant`` adds the options of one row of the multi-class issue to the run (its table goes
into its own block of the docs page): ``class_aware`` (``--class-aware 0.5 --class-weighting
median``), and on top of that ``context`` (the two-scale U-Net, ``--context 2``), ``deep``
(crops of 512, ``--depth 5``), ``pretrain`` (``crackal pretrain`` on the training images
without masks, shrunk by ``--downscale`` as the network sees them, then ``--encoder-weights``)
or ``synth`` (a model trained on synthetic defects first, its encoder fine-tuned here).
``--class-weighting`` and ``--class-aware`` override a variant's options.

PaveSeg preview (100 images 1280x1080, 8 classes: background, crack, pothole, sealed_crack,
patch, alligator_crack, utility_cover, expansion_joint), seeded split 70 / 10 / 20 (seed 0).
Default compact U-Net with eight softmax outputs, trained from scratch on random crops of 384
(cross-entropy with class weights from the training pixels + Dice); ``--downscale`` runs it
on shrunk images for more context. On the 20 test images,
per class: IoU and F1 of the arg-max prediction (strict pixels, counts pooled over images),
ground-truth and predicted area (pixels) and the relative area error, also written to
docs/benchmarks/paveseg_multiclass.md. Skips cleanly when ../shared/data/paveseg is absent.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np  # noqa: E402
from _common import ROOT, dataset_or_skip, hardware, shrink, write_docs  # noqa: E402

from crackal import api  # noqa: E402
from crackal.data.dataset import SegmentationDataset  # noqa: E402
from crackal.data.io import read_image, write_png  # noqa: E402
from crackal.data.layout import open_dataset  # noqa: E402
from crackal.data.splits import load_split, make_split  # noqa: E402
from crackal.metrics.confusion import confusion_matrix  # noqa: E402
from crackal.models.predict import predict_image  # noqa: E402
from crackal.runs.checkpoint import load_model  # noqa: E402


def per_class_scores(model, dataset: SegmentationDataset, names: list[str], tile_size: int) -> dict:
    """Pooled confusion of the arg-max prediction -> IoU, F1 and area error per class."""
    confusion = np.zeros((len(names), len(names)), np.int64)
    for index in range(len(dataset)):
        image, mask = dataset.load(index)
        predicted = predict_image(model, image, tile_size=tile_size).argmax(0)
        confusion += confusion_matrix(mask, predicted, len(names), valid=mask != 255)
    scores = {}
    for c, name in enumerate(names):
        tp, truth, predicted = confusion[c, c], confusion[c].sum(), confusion[:, c].sum()
        scores[name] = {
            "iou": float(tp / (truth + predicted - tp)) if truth + predicted else float("nan"),
            "f1": float(2 * tp / (truth + predicted)) if truth + predicted else float("nan"),
            "true_area_px": int(truth),
            "predicted_area_px": int(predicted),
            "area_error": float((predicted - truth) / truth) if truth else float("nan"),
            "predicted_as": {names[k]: round(float(confusion[c, k] / truth), 4) for k in np.argsort(-confusion[c])[:3]} if truth else {},
        }
    return scores


SCORE_HEADER = ["class", "test pixels", "IoU", "F1", "predicted / true area", "area error"]

MULTICLASS = {"class_aware": 0.5, "class_weighting": "median"}
VARIANTS: dict[str, dict] = {
    "baseline": {},
    "class_aware": MULTICLASS,
    "context": {**MULTICLASS, "context": 2},
    "deep": {**MULTICLASS, "crop_size": 512, "depth": 5},
    "pretrain": MULTICLASS,  # + the encoder of crackal pretrain on the training images
    "synth": MULTICLASS,  # + the encoder of a model trained on synthetic defects
}


def starting_encoder(variant: str, data: Path, out: Path, options: dict, args) -> Path | None:
    """The encoder weights a ``pretrain`` or ``synth`` variant starts from (made once, kept in ``out``)."""
    shape = {"depth": options.get("depth", 4), "base_channels": 16}
    if variant == "pretrain":
        encoder = out / "pretrain" / "encoder.pt"
        if not encoder.is_file():  # the training images without their masks, at the scale the network sees
            pairs, _, _ = open_dataset(data)
            train = set(make_split([p.name for p in pairs], 10, 20, 0)["train"])  # the split api.train makes
            images = out / "pretrain_images"
            for pair in pairs:
                if pair.name in train and not (images / f"{pair.name}.png").is_file():
                    write_png(images / f"{pair.name}.png", shrink(read_image(pair.image), args.downscale))
            api.pretrain(images, out / "pretrain", epochs=args.pretrain_epochs, crop_size=256, threads=args.threads,
                         progress=False, **shape)
        return encoder
    if variant == "synth":
        run = out / "synth_run"
        if not (run / "checkpoints" / "best.pt").is_file():
            synth = api.synth(out / "synth_data", count=args.synth_count, size=384, extra_classes=True, seed=0)
            api.train(synth, run, epochs=args.pretrain_epochs, crop_size=256, time_limit_min=args.minutes / 2,
                      resume=(run / "config.json").is_file(), progress=False, **shape)
        return run / "checkpoints" / "best.pt"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_paveseg")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--minutes", type=float, default=30.0, help="training time limit")
    parser.add_argument("--crop-size", type=int, default=384)
    parser.add_argument("--downscale", type=int, default=1, help="run the network on images shrunk 2, 4 or 8 times")
    parser.add_argument("--tile-size", type=int, default=512, help="inference tile (whole image when at least its size)")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--samples-per-epoch", type=int, default=None, help="crops per epoch (default: one per training image)")
    parser.add_argument("--balance", default="none", help="none, undersample or prf")
    parser.add_argument("--balance-interval", type=int, default=None, help="steps between PRF updates (default: one epoch)")
    parser.add_argument("--val-interval", type=int, default=1, help="validate every N epochs (validation dominates on a GPU)")
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="baseline", help="the options of one row of the multi-class issue")
    parser.add_argument("--class-weighting", default=None, help="override the variant's class weighting (e.g. sqrt_inverse)")
    parser.add_argument("--class-aware", type=float, default=None, help="override the variant's class-aware crop share")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--pretrain-epochs", type=int, default=20, help="pretrain / synth variants: epochs of the first stage")
    parser.add_argument("--synth-count", type=int, default=400, help="synth variant: synthetic images")
    args = parser.parse_args()
    data = dataset_or_skip("paveseg")

    if not (args.out / "checkpoints" / "best.pt").is_file() or not (args.out / "metrics.json").is_file():
        options = {"crop_size": args.crop_size, **VARIANTS[args.variant]}
        if args.class_weighting:
            options["class_weighting"] = args.class_weighting
        if args.class_aware is not None:
            options["class_aware"] = args.class_aware
        api.train(data, args.out, val=10, test=20, seed=0, epochs=args.epochs,
                  batch_size=args.batch_size, samples_per_epoch=args.samples_per_epoch, balance=args.balance,
                  balance_interval=args.balance_interval,
                  val_interval=args.val_interval, downscale=args.downscale, tile_size=max(args.tile_size, options["crop_size"]),
                  time_limit_min=args.minutes, threads=args.threads, resume=(args.out / "config.json").is_file(), progress=False,
                  encoder_weights=starting_encoder(args.variant, data, args.out, options, args), **options)
    model, state = load_model(args.out)
    names = state["config"]["class_names"]
    pairs, _, _ = open_dataset(data)
    test_names = set(load_split(args.out / "split.json")["test"])
    test = SegmentationDataset([p for p in pairs if p.name in test_names], len(names))
    scores = per_class_scores(model, test, names, state["config"]["tile_size"])
    (args.out / "per_class.json").write_text(json.dumps(scores, indent=1))
    history = json.loads((args.out / "metrics.json").read_text())["history"]

    print(f"hardware: {hardware()}")
    print(f"{len(history)} epochs, {history[-1]['seconds'] / 60:.1f} min of training; {len(test)} test images")
    print_scores(scores)
    write_docs("paveseg_multiclass",
               f"{len(history)} of {args.epochs} epochs, {history[-1]['seconds'] / 60:.1f} min of training; {len(test)} test "
               "images, arg-max prediction at full resolution, strict pixels pooled.",
               (SCORE_HEADER, docs_rows(scores)),
               hardware=hardware(), block=None if args.variant == "baseline" else args.variant)


def print_scores(scores: dict) -> None:
    """The per-class table, where each class's pixels went, and the means over the defect classes."""
    print("| " + " | ".join(SCORE_HEADER) + " |")
    print("|" + " --- |" * len(SCORE_HEADER))
    for row in docs_rows(scores):
        print("| " + " | ".join(row) + " |")
    print("where each class's pixels went (top 3 of the arg-max):")
    for name, s in scores.items():
        if s["predicted_as"]:
            print(f"  {name}: " + ", ".join(f"{k} {v:.0%}" for k, v in s["predicted_as"].items()))
    defects = [s for n, s in scores.items() if n != "background" and s["true_area_px"]]
    print(f"mean over the {len(defects)} defect classes present in the test images: "
          f"IoU {np.mean([s['iou'] for s in defects]):.3f}, F1 {np.mean([s['f1'] for s in defects]):.3f}, "
          f"|area error| {np.mean([abs(s['area_error']) for s in defects]):.1%}")


def docs_rows(scores: dict) -> list[list[str]]:
    """The docs page's per-class rows (a class absent from the test masks shows what was predicted)."""
    rows = []
    for name, s in scores.items():
        truth, predicted = s["true_area_px"], s["predicted_area_px"]
        if not truth:
            rows.append([name, "0", "-", "-", f"{predicted:,} px predicted, none true" if predicted else "-", "-"])
        else:
            rows.append([name, f"{truth:,}", f"{s['iou']:.3f}", f"{s['f1']:.3f}", f"{predicted / truth:.2f}",
                         f"{s['area_error'] * 100:+.1f} %"])
    return rows


if __name__ == "__main__":
    main()
