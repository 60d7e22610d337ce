"""The cost of every architecture on this machine: parameters, training-step and inference time,
measured side by side in one run (the default model, the Lite0 U-Net from ImageNet, is measured
in benchmarks/pretrained_encoders.py and, per survey frame, benchmarks/field_speed.py).

    .venv/bin/python benchmarks/model_speed.py [--repeats 3]

Training step: 4 random crops 320x320, AdamW, channels_last on the CPU. Inference: 4 images
320x480 (CrackForest's size), eval mode. Then what scoring a downscaled network's loss at its
own scale saves (``downscale_step``): the compact U-Net with 8 classes and ``--downscale 4`` on
4 crops of 768, its logits upsampled to the crops and scored there against logits and masks at
the network's scale (``shrink_masks``). The tables go to docs/benchmarks/model_speed.md.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import torch  # noqa: E402
from _common import best_time, hardware, write_docs  # noqa: E402

from crackal.data.transforms import shrink_masks  # noqa: E402
from crackal.losses import SegmentationLoss  # noqa: E402
from crackal.models import ARCHS, create_model  # noqa: E402
from crackal.options import DEFAULT_ARCH, DEFAULT_ENCODER  # noqa: E402


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
    print(f"{'arch':48s} {'params (M)':>10s} {'train step (s)':>15s} {'inference 4x320x480 (s)':>24s}")
    rows = []
    models = [(f"`{DEFAULT_ARCH}` (EfficientNet-Lite0, the default)", {"arch": DEFAULT_ARCH, "encoder": DEFAULT_ENCODER})]
    models += [(f"`{arch}` (compact)" if arch == "unet" else f"`{arch}` (ResNet-18)", {"arch": arch})  # create_model's default encoder
               for arch in ARCHS if arch != "siamese_unet"]  # pairs: 6-channel input
    for label, options in models:
        model = create_model(num_classes=2, **options).to(memory_format=torch.channels_last)
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
        print(f"{label:48s} {params:10.2f} {step_s:15.2f} {infer_s:24.2f}", flush=True)
        rows.append([label, f"{params:.1f} M", f"{step_s:.2f} s", f"{infer_s:.2f} s"])
    full, own = downscale_step(args.repeats)
    print(f"--downscale 4, 4 crops of 768, 8 classes: loss on full-size logits {full:.2f} s a step, at the network's scale "
          f"{own:.2f} s ({full / own:.2f}x)")
    write_docs("model_speed", f"Best of {args.repeats}.",
               (["`--arch`", "parameters", "training step, 4 crops 320x320", "inference, 4 images 320x480"], rows),
               "A compact U-Net with 8 classes and `--downscale 4`, one training step on 4 crops of 768:",
               (["loss scored", "training step", "ratio"],
                [["on logits upsampled to the crops", f"{full:.2f} s", f"{full / own:.2f}x"],
                 ["at the network's scale, masks shrunk (`shrink_masks`, what training does)", f"{own:.2f} s", "1.00x"]]),
               hardware=hardware())


def downscale_step(repeats: int, downscale: int = 4, crop: int = 768, classes: int = 8) -> tuple[float, float]:
    """Seconds of one training step of a downscaled compact U-Net, loss on full-size logits and at its own scale."""
    crops = torch.randn(4, 3, crop, crop).contiguous(memory_format=torch.channels_last)
    masks = torch.randint(0, classes, (4, crop, crop))
    model = create_model("unet", classes, downscale=downscale).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = SegmentationLoss("ce+dice", torch.ones(classes))

    def step(own_scale: bool) -> None:
        optimizer.zero_grad()
        if own_scale:
            loss = loss_fn(model(crops, own_scale=True), shrink_masks(masks, downscale, classes))
        else:
            loss = loss_fn(model(crops), masks)
        loss.backward()
        optimizer.step()

    return best_time(lambda: step(False), repeats), best_time(lambda: step(True), repeats)


if __name__ == "__main__":
    main()
