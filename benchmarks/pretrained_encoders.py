"""Which model to start from with few labels: compact U-Net and EfficientNet-Lite0 U-Net, from
scratch, from ImageNet (the installed wheel) and from ImageNet plus crackal's domain pre-training.

    .venv/bin/python benchmarks/pretrained_encoders.py [--labels 10 20 40] [--seeds 0 1] [--minutes 5] [--jobs 2]

CrackForest's seeded split (70 train / 10 validation / 38 test, seed 0, as
crackforest_supervised); each run trains on the first N of the 70 training images in a seeded
order (the same N images for every variant), with the same recipe (default options,
``samples_per_epoch`` 40, validation every 2 epochs, best checkpoint by validation F1) and the
same wall-clock limit on one torch thread per run (``--jobs`` runs at a time). The
``lite0_imagenet_domain`` variant first pre-trains the ImageNet encoder by masked
reconstruction (``crackal pretrain``) on CrackForest's 70 training and 37 unlabelled images
(no labels), once, for ``--pretrain-minutes``; that time is not counted in the runs' limit.
Prints and writes to docs/benchmarks/pretrained_encoders.md the test ODS-F1 strict and at 2 px,
the optimiser steps taken, and the seconds per test image of prediction.
Skips cleanly when ../shared/data/crackforest is absent.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np  # noqa: E402
from _common import ROOT, dataset_or_skip, hardware, write_docs  # noqa: E402

LITE0 = {"arch": "smp_unet", "encoder": "tu-tf_efficientnet_lite0"}
VARIANTS = {
    "unet_scratch": {"arch": "unet"},
    "lite0_scratch": LITE0,
    "lite0_imagenet": {**LITE0, "encoder_weights": "imagenet"},
    "lite0_imagenet_domain": {**LITE0, "encoder_weights": "imagenet"},  # + the domain pre-trained encoder.pt
    "lite1_imagenet": {"arch": "smp_unet", "encoder": "tu-tf_efficientnet_lite1", "encoder_weights": "imagenet"},
    "lite2_imagenet": {"arch": "smp_unet", "encoder": "tu-tf_efficientnet_lite2", "encoder_weights": "imagenet"},
    # narrower decoders (the decoder is 83 % of the default's arithmetic: docs/benchmarks/field_speed.md)
    "lite0_imagenet_dec128": {**LITE0, "encoder_weights": "imagenet", "decoder_channels": [128, 64, 32, 16, 8]},
    "lite0_imagenet_dec64": {**LITE0, "encoder_weights": "imagenet", "decoder_channels": [64, 32, 16, 8, 8]},
}
RECIPE = {"epochs": 10_000, "samples_per_epoch": 40, "val_interval": 2, "threads": 1}


def _supervised_split(data: Path) -> dict[str, list[str]]:
    """crackforest_supervised's split: 70 train / 10 validation / 38 test, seed 0."""
    from crackal.data.layout import find_pairs
    from crackal.data.splits import make_split

    return make_split([p.name for p in find_pairs(data)], 10, 38, 0)


def _split(data: Path, out: Path, labels: int, seed: int) -> Path:
    split = _supervised_split(data)
    train = sorted(split["train"])
    random.Random(seed).shuffle(train)
    path = out / f"split_{labels}_{seed}.json"
    path.write_text(json.dumps({**split, "train": train[:labels]}))
    return path


def _run(task: tuple) -> dict:
    import torch

    from crackal import api

    torch.set_num_threads(1)
    name, labels, seed, data, out, minutes, encoder_file, epochs_of = task
    run = out / f"{name}_{labels}_s{seed}"
    options = dict(VARIANTS[name])
    if name == "lite0_imagenet_domain":
        options["encoder_weights"] = str(encoder_file)
    recipe = dict(RECIPE)
    if epochs_of:  # as many optimiser steps as that variant's run made in its time limit, whatever this one takes
        done = json.loads((out / f"{epochs_of}_{labels}_s{seed}" / "metrics.json").read_text())["history"]
        recipe["epochs"], minutes = len(done), None
    if not (run / "test.json").is_file():
        if not (run / "metrics.json").is_file():
            api.train(data, run, split_file=_split(data, out, labels, seed), seed=seed, time_limit_min=minutes, progress=False,
                      **recipe, **options)
        api.evaluate(run, tolerances=(0, 2), out=run / "test.json", progress=False)
    scores = json.loads((run / "test.json").read_text())
    history = json.loads((run / "metrics.json").read_text())["history"]
    crack = scores["classes"]["crack"]
    return {"variant": name, "labels": labels, "seed": seed, "f1_strict": crack["tol0"]["ods"]["f1"], "f1_tol2": crack["tol2"]["ods"]["f1"],
            "steps": len(history) * RECIPE["samples_per_epoch"] // 4, "train_s": history[-1]["seconds"],
            "predict_s_per_image": scores["seconds_per_image"]}


def _domain_encoder(data: Path, out: Path, minutes: float) -> Path:
    """Masked-reconstruction pre-training of the ImageNet Lite0 encoder on CrackForest's images (no labels)."""
    import shutil

    from crackal import api

    folder, target = out / "domain_images", out / "domain_pretrain" / "encoder.pt"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    from crackal.data.layout import find_pairs

    train = set(_supervised_split(data)["train"])
    for pair in find_pairs(data):
        if pair.name in train:
            shutil.copy(pair.image, folder / pair.image.name)
    for image in sorted((data / "images_unlabeled").glob("*.jpg")):
        shutil.copy(image, folder / image.name)
    api.pretrain(folder, target.parent, epochs=10_000, time_limit_min=minutes, threads=2, progress=False, **LITE0,
                 encoder_weights="imagenet")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench_pretrained")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS)[:4], choices=list(VARIANTS))
    parser.add_argument("--labels", nargs="+", type=int, default=[10, 20, 40])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--minutes", type=float, default=5.0, help="training time limit of each run")
    parser.add_argument("--pretrain-minutes", type=float, default=10.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--epochs-of", choices=list(VARIANTS), default=None,
                        help="train each run for the epochs this variant's run (same labels and seed) made in its time "
                             "limit, with no limit: equal steps, for a comparison on a busy machine")
    parser.add_argument("--block", default=None,
                        help="write the table into this named block of the page (and results_BLOCK.json), leaving the main table")
    args = parser.parse_args()
    data = dataset_or_skip("crackforest")
    args.out.mkdir(parents=True, exist_ok=True)
    encoder_file = _domain_encoder(data, args.out, args.pretrain_minutes) if "lite0_imagenet_domain" in args.variants else None
    tasks = [(name, labels, seed, data, args.out, args.minutes, encoder_file, args.epochs_of)
             for labels in args.labels for seed in args.seeds for name in args.variants]
    with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
        rows = []
        for row in pool.imap(_run, tasks):
            print(json.dumps(row), flush=True)
            rows.append(row)
    block = f"epochs of {args.epochs_of}" if args.epochs_of else args.block
    results = f"results_{block.replace(' ', '_')}.json" if block else "results.json"
    (args.out / results).write_text(json.dumps(rows, indent=1))
    table = []
    for name in args.variants:
        for labels in args.labels:
            runs = [r for r in rows if r["variant"] == name and r["labels"] == labels]
            strict, tol2 = (np.array([r[k] for r in runs]) for k in ("f1_strict", "f1_tol2"))
            table.append([name, labels, f"{strict.mean():.3f} ({strict.min():.3f}-{strict.max():.3f})",
                          f"{tol2.mean():.3f} ({tol2.min():.3f}-{tol2.max():.3f})",
                          f"{np.mean([r['steps'] for r in runs]):.0f}", f"{np.mean([r['predict_s_per_image'] for r in runs]):.2f}"])
    header = ["variant", "labelled images", "test ODS-F1 strict, mean (range)", "test ODS-F1 2 px, mean (range)",
              "optimiser steps in the limit", "predict s / image (1 thread)"]
    for line in table:
        print(" | ".join(map(str, line)))
    budget = (f"as many epochs as {args.epochs_of} made in its limit (same labels and seed), no time limit" if args.epochs_of
              else f"{args.minutes:g} min of training per run")
    if args.epochs_of:
        header[4] = "optimiser steps"
    write_docs("pretrained_encoders",
               f"CrackForest, 38 test images; {budget}, one thread, seeds {', '.join(map(str, args.seeds))}; the same N "
               "training images for every variant.",
               (header, table), hardware=hardware(), block=block)


if __name__ == "__main__":
    main()
