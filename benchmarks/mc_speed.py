"""MC-Dropout speed: crackal's head-only path against the full path, a single forward and BaaL.

    .venv/bin/pip install -e '.[bench]'      # BaaL 2.1.0 (optional; skipped when absent)
    .venv/bin/python benchmarks/mc_speed.py [--images 8] [--iterations 20]

Default compact U-Net, a pool of 320x480 images, batches of 4, I = 20 samples. Every method
runs on the same model and images in this one process; the figures are images per second
and their ratios. Also checks that BaaL's BALD and crackal's agree on the same probability
samples. The tables go to docs/benchmarks/mc_speed.md.
"""

from __future__ import annotations

import argparse
import copy
import os
import time

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import hardware, write_docs  # noqa: E402

from crackal.acquisition.heuristics import pixel_scores  # noqa: E402
from crackal.data.synth import synth_sample  # noqa: E402
from crackal.data.transforms import to_tensor  # noqa: E402
from crackal.models import create_model  # noqa: E402
from crackal.models.outputs import class_probabilities  # noqa: E402
from crackal.models.predict import forward_probabilities  # noqa: E402
from crackal.uncertainty import mc_dropout, stats_from_samples  # noqa: E402


def images_per_second(fn, batches, repeats: int) -> float:
    fn(batches[0])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for batch in batches:
            fn(batch)
        best = min(best, time.perf_counter() - started)
    return sum(len(b) for b in batches) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    torch.manual_seed(0)
    model = create_model("unet", 2, dropout=0.2).eval().to(memory_format=torch.channels_last)
    rng = np.random.default_rng(0)
    images = torch.stack([to_tensor(synth_sample(rng, (320, 480))[0]) for _ in range(args.images)])
    batches = list(images.split(args.batch))
    I = args.iterations  # noqa: E741

    rates = {
        "single forward": images_per_second(lambda b: forward_probabilities(model, b), batches, args.repeats),
        "crackal head-only": images_per_second(lambda b: mc_dropout(model, b, I, path="head"), batches, args.repeats),
        "crackal full": images_per_second(lambda b: mc_dropout(model, b, I, path="full"), batches, args.repeats),
    }
    agreement = None
    try:
        from baal.active.heuristics import BALD
        from baal.bayesian.dropout import MCDropoutModule
        from baal.modelwrapper import ModelWrapper, TrainingArgs
    except ImportError:
        print("BaaL not installed: pip install -e '.[bench]' to compare with it")
    else:
        wrapper = ModelWrapper(MCDropoutModule(copy.deepcopy(model)), TrainingArgs(use_cuda=False))
        rates["BaaL 2.1.0 MCDropoutModule"] = images_per_second(
            lambda b: wrapper.predict_on_batch(b.contiguous(memory_format=torch.channels_last), iterations=I), batches, args.repeats
        )
        logits = wrapper.predict_on_batch(batches[0], iterations=I)  # (N, 1, H, W, I)
        samples = torch.stack([class_probabilities(logits[..., i].double()) for i in range(I)], -1)
        theirs = BALD().compute_score(samples.numpy())
        ours = pixel_scores(stats_from_samples(samples), "bald").numpy()
        agreement = float(np.abs(theirs - ours).max())

    print(f"hardware: {hardware()}")
    print(f"{args.images} images 320x480, batches of {args.batch}, I = {I}, default U-Net "
          f"({sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters)")
    for name, rate in rates.items():
        print(f"  {name:32s} {rate:8.2f} images/s")
    head = rates["crackal head-only"]
    print(f"head-only vs single forward: {rates['single forward'] / head:.2f}x the time (target <= 1.5)")
    print(f"head-only vs full path:      {head / rates['crackal full']:.1f}x faster")
    if "BaaL 2.1.0 MCDropoutModule" in rates:
        print(f"head-only vs BaaL:           {head / rates['BaaL 2.1.0 MCDropoutModule']:.1f}x faster (target >= 8)")
        print(f"BALD, BaaL vs crackal on the same samples: max |difference| = {agreement:.2e} (target <= 1e-6)")

    labels = {"single forward": "single deterministic forward", "crackal head-only": "crackal MC-Dropout, head-only path",
              "crackal full": "crackal MC-Dropout, full path",
              "BaaL 2.1.0 MCDropoutModule": "BaaL 2.1.0 `MCDropoutModule` + `ModelWrapper.predict_on_batch`"}
    ratios = [["head-only path, time of a single forward", f"{rates['single forward'] / head:.2f}x", "<= 1.5"],
              ["head-only path, speed-up over the full path", f"{head / rates['crackal full']:.1f}x", "-"]]
    if "BaaL 2.1.0 MCDropoutModule" in rates:
        ratios += [["head-only path, speed-up over BaaL", f"{head / rates['BaaL 2.1.0 MCDropoutModule']:.1f}x", ">= 8"],
                   ["BALD, BaaL vs crackal on the same samples, max abs difference", f"{agreement:.1e}", "<= 1e-6"]]
    write_docs("mc_speed",
               f"Default U-Net, {args.images} images 320x480 in batches of {args.batch}, I = {I} samples, one process.",
               (["method", "images/s"], [[labels.get(name, name), f"{rate:.2f}"] for name, rate in rates.items()]),
               (["comparison", "measured", "target"], ratios), hardware=hardware())


if __name__ == "__main__":
    main()
