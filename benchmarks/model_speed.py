"""Why the default is the compact U-Net: parameters, training-step and inference time of every
architecture on this machine, measured side by side in one run.

    .venv/bin/python benchmarks/model_speed.py [--repeats 3]

Training step: 4 random crops 320x320, AdamW, channels_last on the CPU. Inference: 4 images
320x480 (CrackForest's size), eval mode. The table goes to docs/benchmarks/model_speed.md.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import torch  # noqa: E402
from _common import hardware, write_docs  # noqa: E402

from crackal.losses import SegmentationLoss  # noqa: E402
from crackal.models import ARCHS, create_model  # noqa: E402


def best_time(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.manual_seed(0)
    crops, target = torch.randn(4, 3, 320, 320), torch.randint(0, 2, (4, 320, 320))
    images = torch.randn(4, 3, 320, 480).contiguous(memory_format=torch.channels_last)
    crops = crops.contiguous(memory_format=torch.channels_last)
    loss_fn = SegmentationLoss("ce+dice", torch.tensor([0.5, 5.0]))
    print(f"hardware: {hardware()}")
    print(f"{'arch':14s} {'params (M)':>10s} {'train step (s)':>15s} {'inference 4x320x480 (s)':>24s}")
    rows = []
    for arch in (a for a in ARCHS if a != "siamese_unet"):  # pairs: 6-channel input
        model = create_model(arch, 2).to(memory_format=torch.channels_last)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

        def step():
            model.train()
            optimizer.zero_grad()
            loss_fn(model(crops), target).backward()
            optimizer.step()

        def infer():
            model.eval()
            with torch.inference_mode():
                model(images)

        params = sum(p.numel() for p in model.parameters()) / 1e6
        step_s = best_time(step, args.repeats)
        infer_s = best_time(infer, args.repeats)
        print(f"{arch:14s} {params:10.2f} {step_s:15.2f} {infer_s:24.2f}", flush=True)
        label = f"`{arch}` (default, compact)" if arch == "unet" else f"`{arch}` (ResNet-18)"  # create_model's default encoder
        rows.append([label, f"{params:.1f} M", f"{step_s:.2f} s", f"{infer_s:.2f} s"])
    write_docs("model_speed", f"Best of {args.repeats}.",
               (["`--arch`", "parameters", "training step, 4 crops 320x320", "inference, 4 images 320x480"], rows),
               hardware=hardware())


if __name__ == "__main__":
    main()
