"""``crackal detect train|evaluate|predict``: RetinaNet box detection of defects."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from crackal.cli.options import (
    Binarize,
    Classes,
    Device,
    Engine,
    EngineThreads,
    Quiet,
    RayActors,
    RayAddress,
    Resume,
    Seed,
    SplitFile,
    Test,
    Threads,
    TimeLimit,
    Val,
    Weights,
    console,
    progress_for,
)

app = typer.Typer(help="Detect defects as boxes (RetinaNet), the first stage of detect-then-segment.", no_args_is_help=True)

Boxes = Annotated[Path | None, typer.Option(help="Box annotations: a COCO .json file or a folder of VOC .xml / YOLO .txt files (default: DATA/annotations.json, annotations/, det_voc/, det_yolo/, else boxes from DATA's masks).")]
Masks = Annotated[Path | None, typer.Option(help="Mask folder (boxes derived from masks; also used for the pixel measures).")]


@app.command("train")
def train(
    data: Annotated[Path, typer.Argument(help="Dataset folder: images/ with boxes (see --boxes) or with masks/.")],
    out: Annotated[Path, typer.Option(help="Run folder.")] = Path("runs/detect"),
    boxes: Boxes = None,
    masks: Masks = None,
    classes: Classes = None,
    backbone: Annotated[str, typer.Option(help="resnet18 (trains on a CPU), resnet34 or resnet50 (retinanet_resnet50_fpn), from scratch; lite0: EfficientNet-Lite0 from its ImageNet weights.")] = "resnet18",
    image_size: Annotated[int, typer.Option(help="Rescale the short image side to this many px; 0 keeps the image size.")] = 0,
    head_dropout: Annotated[float, typer.Option(help="Dropout before the last conv of both heads (MC samples for active learning).")] = 0.1,
    epochs: Annotated[int, typer.Option()] = 30,
    batch_size: Annotated[int, typer.Option()] = 4,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW, warm-up then cosine).")] = 5e-4,
    merge_distance: Annotated[int, typer.Option(help="Boxes from masks: defect pixels closer than this (px) share a box.")] = 8,
    min_pixels: Annotated[int, typer.Option(help="Boxes from masks: drop defects smaller than this (px).")] = 20,
    val: Val = 0.1,
    test: Test = 0.2,
    split_file: SplitFile = None,
    seed: Seed = 0,
    weights: Weights = None,
    device: Device = "auto",
    threads: Threads = None,
    time_limit: TimeLimit = None,
    resume: Resume = False,
    binarize: Binarize = False,
    quiet: Quiet = False,
) -> None:
    """Train a RetinaNet detector (from scratch; best checkpoint by validation mAP@0.5).

    Pass the segmentation run's split (--split-file RUN/split.json) to test a detect-then-segment pipeline on unseen images.
    """
    from crackal import api

    result = api.detect_train(
        data, out, boxes=boxes, masks=masks, classes=classes, val=val, test=test, split_file=split_file, binarize=binarize,
        resume=resume, weights=weights, backbone=backbone, image_size=image_size, head_dropout=head_dropout, epochs=epochs,
        batch_size=batch_size, lr=lr, merge_distance=merge_distance, min_pixels=min_pixels, seed=seed, device=device,
        threads=threads, time_limit_min=time_limit, progress=progress_for(quiet),
    )
    score = f"validation mAP@0.5 {result.best_score:.4f}" if result.best_score is not None else "no validation split: last epoch kept"
    console.print(f"best epoch {result.best_epoch}: {score}, box score threshold {result.threshold:.2f}; "
                  f"{result.seconds:.0f}s; run folder {result.run_dir}")


def print_detection(result: dict) -> None:
    """Print detection scores as a table: mAP, AP per class, the pixel measures when there are masks."""
    table = Table(title=f"{result['images']} images, split {result.get('split', '?')}")
    table.add_column("metric (protocol)")
    table.add_column("value")
    table.add_row("mAP@0.5 (COCO)", f"{result['map_50']:.4f}")
    table.add_row("mAP@0.5:0.95 (COCO)", f"{result['map']:.4f}")
    for name, entry in result["classes"].items():
        table.add_row(f"AP@0.5 {name}", f"{entry['ap_50']:.4f}")
    if "box_precision" in result:
        threshold = result["score_threshold"]
        for key in ("box_precision", "segmentation_error", "data_reduction"):
            table.add_row(f"{key.replace('_', ' ')} (score >= {threshold:.2f}, vs masks)", f"{result[key]:.4f}")
    table.add_row("seconds per image", f"{result['seconds_per_image']:.3f}")
    console.print(table)


@app.command("evaluate")
def evaluate(
    checkpoint: Annotated[Path, typer.Argument(help="Run folder from 'crackal detect train', or a checkpoint .pt file.")],
    data: Annotated[Path | None, typer.Argument(help="Dataset to score (default: the run's own test split).")] = None,
    boxes: Boxes = None,
    masks: Masks = None,
    split: Annotated[str, typer.Option(help="Split of the run's dataset when DATA is not given.")] = "test",
    score_threshold: Annotated[float | None, typer.Option(help="Box score threshold of the pixel measures (default: chosen on validation).")] = None,
    out: Annotated[Path | None, typer.Option(help="JSON file for the scores.")] = None,
    quiet: Quiet = False,
) -> None:
    """Score a detector: mAP@0.5 and @0.5:0.95, per-class AP, box precision, segmentation error, data reduction."""
    from crackal import api

    result = api.detect_evaluate(checkpoint, data, boxes=boxes, masks=masks, split=split, score_threshold=score_threshold, out=out,
                                 progress=progress_for(quiet))
    print_detection(result)
    console.print(f"saved to {result['saved_to']}")


@app.command("predict")
def predict(
    checkpoint: Annotated[Path, typer.Argument(help="Run folder from 'crackal detect train', or a checkpoint .pt file.")],
    inputs: Annotated[Path, typer.Argument(help="An image or a folder of images.")],
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("detections"),
    score_threshold: Annotated[float | None, typer.Option(help="Keep boxes scoring at least this (default: chosen on validation).")] = None,
    box_format: Annotated[str, typer.Option("--format", help="voc (one .xml per image), yolo (.txt) or coco (boxes.json).")] = "voc",
    engine: Engine = "torch",
    threads: EngineThreads = None,
    ray: RayAddress = None,
    ray_actors: RayActors = None,
    quiet: Quiet = False,
) -> None:
    """Write boxes (VOC, YOLO or COCO) and overlays with the boxes drawn."""
    from crackal import api

    counts = api.detect_predict(checkpoint, inputs, out, score_threshold=score_threshold, box_format=box_format,
                                engine=engine, threads=threads, progress=progress_for(quiet), ray=ray, ray_actors=ray_actors)
    console.print(f"{sum(counts.values())} boxes in {len(counts)} image(s) written to {out}")
