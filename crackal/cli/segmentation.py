"""``crackal synth / train / evaluate / predict / demo``: segmentation from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer
from rich.table import Table

from crackal.cli.options import (
    Arch,
    Binarize,
    Checkpoint,
    Classes,
    Context,
    Data,
    Device,
    Downscale,
    Encoder,
    EncoderWeights,
    EngineThreads,
    Masks,
    Quiet,
    RayActors,
    RayAddress,
    Resume,
    Seed,
    SegmentEngine,
    SkipInvalid,
    SplitFile,
    Test,
    Threads,
    TimeLimit,
    Val,
    Weights,
    console,
    progress_for,
)
from crackal.errors import CrackalError
from crackal.options import AUTO, DEFAULT_ARCH, DEFAULT_ENCODER


def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write images/, masks/ and classes.json to.")],
    count: Annotated[int, typer.Option(help="Number of images.")] = 60,
    size: Annotated[str, typer.Option(help="Image size, HEIGHTxWIDTH or one number.")] = "256",
    surface: Annotated[str, typer.Option(help="asphalt, concrete or mixed.")] = "mixed",
    extra_classes: Annotated[bool, typer.Option(help="Also draw potholes, patches and manhole covers as classes.")] = False,
    crack_free: Annotated[float, typer.Option(help="Share of images without any crack.")] = 0.15,
    prefix: Annotated[str, typer.Option(help="Image names are PREFIX_NNN: give two sets used together (a pool and a "
                                        "held-out set) different prefixes, as crackal knows images by name.")] = "synth",
    seed: Seed = 0,
) -> None:
    """Generate a synthetic crack dataset (textured asphalt/concrete with distractors)."""
    from crackal import api

    path = api.synth(out, count=count, size=size, seed=seed, surface=surface, extra_classes=extra_classes, crack_free=crack_free,
                     prefix=prefix)
    console.print(f"wrote {count} images and masks to {path}")


def _widths(text: str | None) -> list[int] | None:
    """``--decoder-channels 128,64,32,16,8`` as a list (checked with the model's other options)."""
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise CrackalError(f"--decoder-channels takes whole numbers separated by commas (e.g. 128,64,32,16,8), got {text!r}") from None


def train(
    data: Data,
    out: Annotated[Path, typer.Option(help="Run folder (config, split, checkpoints, metrics, plots).")] = Path("runs/train"),
    masks: Masks = None,
    coco: Annotated[Path | None, typer.Option(help="COCO instances file (polygons or RLE) labelling the images in DATA (or DATA/images/); default: DATA/annotations.json when DATA has no masks/.")] = None,
    classes: Classes = None,
    arch: Arch = DEFAULT_ARCH,
    encoder: Encoder = DEFAULT_ENCODER,
    base_channels: Annotated[int, typer.Option(help="Width of the compact U-Net's first level.")] = 16,
    depth: Annotated[int, typer.Option(help="Poolings of the compact U-Net.")] = 4,
    decoder_channels: Annotated[str | None, typer.Option(help="smp_unet: the decoder's five widths, widest first, e.g. 128,64,32,16,8 (default 256,128,64,32,16; the decoder is most of the arithmetic).")] = None,
    epochs: Annotated[int, typer.Option()] = 40,
    batch_size: Annotated[int, typer.Option()] = 4,
    crop_size: Annotated[int, typer.Option(help="Random training crop (multiple of 32).")] = 320,
    samples_per_epoch: Annotated[int | None, typer.Option(help="Crops per epoch (default: one per training image).")] = None,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW, warm-up then cosine).")] = 2e-3,
    ema_decay: Annotated[float | None, typer.Option(help="Keep an exponential moving average of the weights (e.g. 0.995).")] = None,
    loss: Annotated[str, typer.Option(help="Sum of ce, dice, focal, adaptive (CE weighted by the batch's predicted class ratio), e.g. ce+dice.")] = "ce+dice",
    class_weighting: Annotated[str, typer.Option(help="inverse, sqrt_inverse, median or none (from training pixel counts).")] = "sqrt_inverse",
    balance: Annotated[str, typer.Option(help="Rare defect pixels: none, undersample (drop background-only crops) or prf (precision-recall flow).")] = "none",
    class_aware: Annotated[float, typer.Option(help="Share of crops centred on a pixel of a defect class drawn uniformly from those in the training set (rare classes seen as often as common ones), e.g. 0.5; 0 = off.")] = 0.0,
    positive_share: Annotated[float, typer.Option(help="prf: starting share of crops that hold defect pixels.")] = 0.5,
    background_keep: Annotated[float, typer.Option(help="undersample: probability of keeping a background-only crop.")] = 0.25,
    balance_interval: Annotated[int | None, typer.Option(help="prf: training steps between two precision/recall measurements (default: one epoch).")] = None,
    monitor_train: Annotated[int, typer.Option(help="prf: measure precision/recall on the validation images plus this many training images (a larger, steadier monitor).")] = 0,
    dropout: Annotated[float, typer.Option(help="Dropout2d before the last convolution.")] = 0.2,
    tile_filter: Annotated[int, typer.Option(help="Two-stage filter: a crack / no-crack classifier on squares of this size (e.g. 64) keeps the segmentation only where it sees a crack; 0 = off.")] = 0,
    downscale: Downscale = 1,
    context: Context = 1,
    val: Val = 0.1,
    test: Test = 0.2,
    val_interval: Annotated[int, typer.Option(help="Validate every N epochs (and after the last).")] = 1,
    split_file: SplitFile = None,
    seed: Seed = 0,
    weights: Weights = None,
    encoder_weights: EncoderWeights = AUTO,
    device: Device = "auto",
    threads: Threads = None,
    time_limit: TimeLimit = None,
    resume: Resume = False,
    skip_invalid: SkipInvalid = False,
    binarize: Binarize = False,
    quiet: Quiet = False,
) -> None:
    """Train a segmentation model on a folder of images and masks (or a COCO file)."""
    from crackal import api

    result = api.train(
        data, out, masks=masks, coco=coco, classes=classes, val=val, test=test, split_file=split_file,
        skip_invalid=skip_invalid, binarize=binarize, resume=resume, weights=weights, encoder_weights=encoder_weights,
        arch=arch, encoder=encoder, base_channels=base_channels, depth=depth, decoder_channels=_widths(decoder_channels),
        epochs=epochs, batch_size=batch_size, crop_size=crop_size,
        samples_per_epoch=samples_per_epoch, lr=lr, ema_decay=ema_decay, loss=loss, class_weighting=class_weighting,
        balance=balance, class_aware=class_aware, positive_share=positive_share, background_keep=background_keep, balance_interval=balance_interval, monitor_train=monitor_train,
        dropout=dropout, tile_filter=tile_filter, downscale=downscale, context=context, seed=seed, device=device, threads=threads, time_limit_min=time_limit,
        val_interval=val_interval, progress=progress_for(quiet),
    )
    scored = (
        f"validation F1 {result.best_score:.4f} (strict pixels, ODS threshold {result.threshold:.2f})"
        if result.best_score is not None else "no validation split: last epoch kept"
    )
    console.print(f"best epoch {result.best_epoch}: {scored}; {result.seconds:.0f}s; run folder {result.run_dir}")


def pretrain(
    images: Annotated[Path, typer.Argument(help="Folder of unlabelled road images (or a dataset root with images/).")],
    out: Annotated[Path, typer.Option(help="Folder for encoder.pt, model.pt, pretrain.json and metrics.json.")] = Path("runs/pretrain"),
    epochs: Annotated[int, typer.Option()] = 20,
    crop_size: Annotated[int, typer.Option(help="Random crop (a multiple of 2^depth and of --patch).")] = 256,
    batch_size: Annotated[int, typer.Option()] = 8,
    samples_per_epoch: Annotated[int | None, typer.Option(help="Crops per epoch (default: one per image).")] = None,
    arch: Arch = DEFAULT_ARCH,
    encoder: Encoder = DEFAULT_ENCODER,
    encoder_weights: EncoderWeights = AUTO,
    base_channels: Annotated[int, typer.Option(help="Width of the compact U-Net's first level (train with the same).")] = 16,
    depth: Annotated[int, typer.Option(help="Poolings of the compact U-Net (train with the same).")] = 4,
    patch: Annotated[int, typer.Option(help="Side of the masked squares in px.")] = 16,
    mask_ratio: Annotated[float, typer.Option(help="Share of the squares masked.")] = 0.6,
    lr: Annotated[float, typer.Option(help="Learning rate (AdamW).")] = 1e-3,
    seed: Seed = 0,
    device: Device = "auto",
    threads: Threads = None,
    time_limit: Annotated[float | None, typer.Option(help="Stop after the epoch that reaches this many minutes.")] = None,
    quiet: Quiet = False,
) -> None:
    """Pre-train a model's encoder on unlabelled images (masked-image reconstruction): OUT/encoder.pt for 'crackal train --encoder-weights'."""
    from crackal import api

    metrics = api.pretrain(images, out, epochs=epochs, crop_size=crop_size, batch_size=batch_size, samples_per_epoch=samples_per_epoch,
                           arch=arch, encoder=encoder, encoder_weights=encoder_weights, base_channels=base_channels, depth=depth,
                           patch=patch, mask_ratio=mask_ratio, lr=lr, seed=seed, device=device, threads=threads,
                           time_limit_min=time_limit, progress=progress_for(quiet))
    first, last = metrics["history"][0]["loss"], metrics["history"][-1]["loss"]
    console.print(f"pre-trained on {metrics['images']} images: masked reconstruction loss {first:.4f} -> {last:.4f}; "
                  f"encoder weights {out / 'encoder.pt'} (crackal train --encoder-weights with "
                  + (f"--arch unet --depth {depth} --base-channels {base_channels})" if arch == "unet" else f"--arch {arch} --encoder {encoder})"))


def print_metrics(result: dict) -> None:
    """Print a segmentation evaluation as a table: class, metric (protocol), value."""
    from crackal.metrics.segmentation import summary_rows

    table = Table(title=f"{result['images']} images, split {result.get('split', '?')}" + (", flip TTA" if result.get("tta") else ""))
    for column in ("class", "metric (protocol)", "value"):
        table.add_column(column)
    for name, metric, value in summary_rows(result):
        table.add_row(name, metric, f"{value:.4f}")
    console.print(table)


def evaluate(
    checkpoint: Checkpoint,
    data: Annotated[Path | None, typer.Argument(help="Dataset to score (default: the run's own test split).")] = None,
    masks: Masks = None,
    split: Annotated[str, typer.Option(help="Split of the run's dataset when DATA is not given: train, val or test.")] = "test",
    tolerance: Annotated[list[int], typer.Option(help="Distance tolerances in px (repeatable); 0 (strict) is always included.")] = [0, 2, 5],  # noqa: B006
    tta: Annotated[bool, typer.Option(help="Average predictions over the 4 flips.")] = False,
    out: Annotated[Path | None, typer.Option(help="JSON file for the scores.")] = None,
    two_stage: Annotated[Path | None, typer.Option(help="Detect then segment: a run of 'crackal detect train'; only its boxes are segmented.")] = None,
    box_margin: Annotated[int, typer.Option(help="Two-stage: grow each box by this many px of context.")] = 16,
    box_threshold: Annotated[float | None, typer.Option(help="Two-stage: box score threshold (default: the detector's).")] = None,
    skip_invalid: SkipInvalid = False,
    binarize: Binarize = False,
    quiet: Quiet = False,
) -> None:
    """Score a trained model: precision/recall/F1/IoU strict and with tolerance, ODS, OIS, AUC."""
    from crackal import api

    result = api.evaluate(checkpoint, data, masks=masks, split=split, tolerances=tuple(tolerance), tta=tta,
                          out=out, skip_invalid=skip_invalid, binarize=binarize,
                          two_stage=two_stage, box_margin=box_margin, box_threshold=box_threshold,
                          progress=progress_for(quiet))
    print_metrics(result)
    figure = f" (confusion matrix: {result['confusion_figure']})" if result.get("confusion_figure") else ""
    console.print(f"saved to {result['saved_to']}{figure}")


def predict(
    checkpoint: Checkpoint,
    inputs: Annotated[Path, typer.Argument(help="An image or a folder of images, any size.")],
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("predictions"),
    gsd: Annotated[float | None, typer.Option(help="Ground sampling distance in metres per pixel (areas in m^2).")] = None,
    threshold: Annotated[float | None, typer.Option(help="Crack probability threshold (default: chosen on validation).")] = None,
    tile_size: Annotated[int | None, typer.Option(help="Images larger than this are tiled (default: the run's).")] = None,
    overlap: Annotated[int, typer.Option(help="Tile overlap in px.")] = 64,
    tta: Annotated[bool, typer.Option(help="Average predictions over the 4 flips.")] = False,
    two_stage: Annotated[Path | None, typer.Option(help="Detect then segment: a run of 'crackal detect train'; only its boxes are segmented.")] = None,
    box_margin: Annotated[int, typer.Option(help="Two-stage: grow each box by this many px of context.")] = 16,
    box_threshold: Annotated[float | None, typer.Option(help="Two-stage: box score threshold (default: the detector's).")] = None,
    engine: SegmentEngine = "torch",
    threads: EngineThreads = None,
    workers: Annotated[int | None, typer.Option(help="Threads reading and writing images while the network runs (default 2; 0: one image after the other).")] = None,
    batch_size: Annotated[int, typer.Option(help="Tiles (or whole small images) per forward pass, across images.")] = 4,
    ray: RayAddress = None,
    ray_actors: RayActors = None,
    defects: Annotated[bool, typer.Option("--defects", help="Also write defect instances (defects.csv/.json/.geojson: type, length, width, severity, geometry) and the condition summary (condition.md/.html, severity_map.png).")] = False,
    gap: Annotated[float, typer.Option(help="--defects: crack pieces this close (px) are one crack.")] = 5.0,
    severity: Annotated[str, typer.Option(help="--defects: severity bands by crack width in mm: pavement (LTPP: 6, 19), bridge (AASHTO: 0.3, 1.3) or bounds like 0.2,0.5[:names].")] = "pavement",
    severity_width: Annotated[str, typer.Option(help="--defects: the width the bands apply to: mean, median, p95 or max.")] = "mean",
    travel_direction: Annotated[float, typer.Option(help="--defects: direction of travel in the image, degrees counter-clockwise from its x axis (90 = up the image); longitudinal cracks run along it.")] = 90.0,
    heading: Annotated[float | None, typer.Option(help="--defects: direction the top of the photos faces, degrees clockwise from north (default: EXIF GPSImgDirection); with --gsd places GPS photos' defects on the map.")] = None,
    segments: Annotated[Path | None, typer.Option(help="--defects: CSV with columns image,segment: a condition summary per segment.")] = None,
    chainage: Annotated[float | None, typer.Option(help="--defects: segments of this many metres along the photos' GPS track.")] = None,
    window: Annotated[int, typer.Option(help="GeoTIFFs and huge TIFFs are read and written in windows of this many px.")] = 2048,
    skip_invalid: SkipInvalid = False,
    quiet: Quiet = False,
) -> None:
    """Predict masks, probability maps, overlays and defect measurements (--defects: instances, GeoJSON, condition summary)."""
    from crackal import api
    from crackal.inference.defects import DefectOptions, WidthStatistic, severity_bands

    options = DefectOptions(gap_px=gap, severity=severity_bands(severity),
                            severity_width=cast(WidthStatistic, severity_width),  # checked by DefectOptions
                            travel_direction_deg=travel_direction) if defects else False
    records = api.predict(checkpoint, inputs, out, gsd=gsd, threshold=threshold, tile_size=tile_size,
                          overlap=overlap, tta=tta, skip_invalid=skip_invalid,
                          two_stage=two_stage, box_margin=box_margin, box_threshold=box_threshold,
                          engine=engine, threads=threads, workers=workers, batch_size=batch_size, ray=ray, ray_actors=ray_actors,
                          defects=options, heading=heading, segments=segments, chainage=chainage, window=window,
                          progress=progress_for(quiet))
    extra = ", defects.csv/.geojson, condition.md" if defects else ""
    console.print(f"predicted {len(records)} image(s) into {out} (masks/, probabilities/, overlays/, measurements.csv{extra})")


def export(
    checkpoint: Annotated[Path, typer.Argument(help="Run folder of 'crackal train', 'crackal detect train' or 'crackal classify train', or its checkpoint .pt file.")],
    format: Annotated[str, typer.Option("--format", help="onnx: model.onnx (plus trunk.onnx and head.onnx for MC-Dropout of a segmentation run).")] = "onnx",
    out: Annotated[Path | None, typer.Option(help="Folder for the exported files (default: RUN/onnx).")] = None,
    int8: Annotated[bool, typer.Option("--int8", help="Segmentation: also model.int8.onnx, statically quantised to int8 (predict --engine onnxruntime-int8).")] = False,
    calibration: Annotated[Path | None, typer.Option(help="--int8: images whose crops calibrate the activations (default: the run's training images).")] = None,
) -> None:
    """Export a trained run (segmentation, detector or patch classifier) for ONNX Runtime."""
    import json

    from crackal import api

    folder = api.export(checkpoint, out, format=format, int8=int8, calibration=calibration)
    meta = json.loads((folder / "onnx.json").read_text())
    console.print(f"exported the {meta['kind']} to {folder} ({', '.join(meta['files'])})")


def demo(
    out: Annotated[Path, typer.Option(help="Folder for the data, the simulation and the report.")] = Path("demo_output"),
    seeds: Annotated[int, typer.Option(help="Repetitions of each strategy.")] = 3,
    rounds: Annotated[int, typer.Option(help="Active-learning rounds per run.")] = 5,
    round_steps: Annotated[str, typer.Option(help="Training steps per round: auto (grows with the labels) or a number.")] = "auto",
    seed: Annotated[int, typer.Option(help="Seed of the synthetic data.")] = 0,
    quiet: Quiet = False,
) -> None:
    """Active learning on synthetic cracks (BALD vs random), with a report (report.md)."""
    from crackal.demo import run_demo

    report = run_demo(out, seeds=seeds, rounds=rounds, round_steps=round_steps, seed=seed, progress=progress_for(quiet))
    console.print(f"report: {report}")

