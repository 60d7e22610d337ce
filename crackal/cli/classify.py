"""``crackal classify train | evaluate | predict``: the patch classifier and its sliding window."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer

from crackal.cli.options import Engine, EngineThreads, RayActors, RayAddress, Seed, Test, Threads, Val, console

app = typer.Typer(help="Patch classification (crack / no crack) and sliding-window crack maps.", no_args_is_help=True)
Run = Annotated[Path, typer.Argument(help="Run folder from 'crackal classify train', or its checkpoint .pt.")]


def _print_scores(result: dict) -> None:
    console.print(f"{result['patches']} patches ({result['split']}): accuracy {result['accuracy']:.4f}, precision "
                  f"{result['precision']:.4f}, recall {result['recall']:.4f}, F1 {result['f1']:.4f}, ROC-AUC {result['auc']:.4f}")


@app.command("train")
def train(
    data: Annotated[Path, typer.Argument(help="Patch folder: labels.csv (path,label) or one sub-folder per class.")],
    out: Annotated[Path, typer.Option(help="Run folder.")] = Path("runs/classify"),
    size: Annotated[int, typer.Option(help="Patches are resized to this input size.")] = 64,
    backbone: Annotated[str, typer.Option(help="small (conv-BN-ReLU blocks from scratch) or lite0 (EfficientNet-Lite0 from its ImageNet weights).")] = "small",
    epochs: Annotated[int, typer.Option()] = 10,
    batch_size: Annotated[int, typer.Option()] = 64,
    lr: Annotated[float, typer.Option()] = 2e-3,
    val: Val = 0.1,
    test: Test = 0.2,
    seed: Seed = 0,
    threads: Threads = None,
) -> None:
    """Train the patch classifier (conv-BN-ReLU blocks, or ImageNet EfficientNet-Lite0) and score it on its test split."""
    from crackal.classify.workflow import train_classifier

    result = train_classifier(data, out, val=val, test=test, size=size, backbone=backbone, epochs=epochs, batch_size=batch_size, lr=lr,
                              seed=seed, threads=threads, progress=console.print)
    if result.get("patches"):
        _print_scores(result)
    console.print(f"run folder {out}")


@app.command("evaluate")
def evaluate(
    run: Run,
    data: Annotated[Path | None, typer.Argument(help="Patch folder to score (default: the run's own split).")] = None,
    split: Annotated[str, typer.Option(help="train, val or test, when DATA is not given.")] = "test",
) -> None:
    """Accuracy, precision, recall, F1 and ROC-AUC of a trained classifier."""
    from crackal.classify.workflow import evaluate_classifier

    result = evaluate_classifier(run, data, split)
    _print_scores(result)
    console.print(f"saved to {result['saved_to']}")


@app.command("predict")
def predict(
    run: Run,
    inputs: Annotated[Path, typer.Argument(help="An image or a folder of images, any size.")],
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("patch_predictions"),
    window: Annotated[int | None, typer.Option(help="Window size in image px (default: the classifier's input size).")] = None,
    stride: Annotated[int | None, typer.Option(help="Step between windows in px (default: half the window).")] = None,
    batch_size: Annotated[int, typer.Option(help="Windows classified together.")] = 64,
    engine: Engine = "torch",
    threads: EngineThreads = None,
    ray: RayAddress = None,
    ray_actors: RayActors = None,
) -> None:
    """Sliding window over images: crack-probability heat maps, overlays, per-window CSVs."""
    from crackal.classify.workflow import predict_sliding
    from crackal.options import Engine as EngineName

    records = predict_sliding(run, inputs, out, window=window, stride=stride, batch_size=batch_size,
                              engine=cast(EngineName, engine),  # checked by predict_sliding
                              threads=threads, ray=ray, ray_actors=ray_actors)
    seconds = sum(r["seconds"] for r in records) / len(records)
    console.print(f"{len(records)} image(s) into {out} (heatmaps/, overlays/, windows/); {seconds:.2f} s per image")
