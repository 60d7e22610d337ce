"""``crackal change ...``: synthetic bi-temporal pairs and change-detection active learning."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crackal.cli.options import Quiet, Seed, console, progress_for

app = typer.Typer(help="Change detection between two inspections (Siamese U-Net on A/ B/ masks/ pairs).",
                  no_args_is_help=True)


@app.command("synth")
def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write A/, B/ and masks/ to.")],
    count: Annotated[int, typer.Option(help="Number of pairs.")] = 40,
    size: Annotated[str, typer.Option(help="Image size, HEIGHTxWIDTH or one number.")] = "256",
    change_probability: Annotated[float, typer.Option(help="Share of pairs where a crack grew, appeared or was sealed.")] = 0.5,
    surface: Annotated[str, typer.Option(help="asphalt, concrete or mixed.")] = "mixed",
    seed: Seed = 0,
) -> None:
    """Synthetic pairs: one surface at two dates (other light, slight misregistration, cracks that changed)."""
    from crackal.change.api import synth_pairs

    path = synth_pairs(out, count, size, seed, change_probability, surface)
    console.print(f"wrote {count} pairs to {path} (A/, B/, masks/)")


@app.command("al")
def al(
    data: Annotated[Path, typer.Argument(help="Bi-temporal dataset: A/, B/, masks/ with the same names.")],
    out: Annotated[Path, typer.Option(help="Folder for the runs, the models and the report.")] = Path("runs/change_al"),
    strategy: Annotated[list[str], typer.Option(help="HEURISTIC[:METHOD], repeatable: variance or entropy with ensemble or mc_batchnorm; random.")] = ["variance:ensemble", "variance:mc_batchnorm", "entropy:mc_batchnorm", "random"],  # noqa: B006
    seeds: Annotated[int, typer.Option(help="Repetitions of each strategy.")] = 3,
    rounds: Annotated[int, typer.Option(help="Rounds per run (the first trains on the initial set).")] = 8,
    initial: Annotated[int, typer.Option(help="Initial changed tiles, and as many unchanged (a balanced start).")] = 25,
    query_size: Annotated[int, typer.Option("--query-size", "--step", help="Tiles labelled per round (--step is the old name).")] = 25,
    tile: Annotated[int, typer.Option(help="Tile size in px (tiles over 3 % changed are changed, under 1 % unchanged).")] = 64,
    heldout: Annotated[float, typer.Option(help="Share (<1) or count of pairs held out for the balanced test set.")] = 0.3,
    test_per_class: Annotated[int | None, typer.Option(help="Changed (and unchanged) test tiles; default: every changed one.")] = None,
    ensemble_size: Annotated[int, typer.Option(help="Models of an ensemble (M).")] = 5,
    iterations: Annotated[int, typer.Option(help="MC-BatchNorm passes.")] = 5,
    steps: Annotated[int, typer.Option(help="Minimum training steps per model.")] = 100,
    epochs: Annotated[float, typer.Option(help="Minimum passes over the labelled tiles per model.")] = 8.0,
    base_channels: Annotated[int, typer.Option(help="Width of the Siamese U-Net's first level.")] = 8,
    depth: Annotated[int, typer.Option(help="Poolings of the Siamese U-Net.")] = 3,
    quiet: Quiet = False,
) -> None:
    """Simulated active learning for change detection (the ground truth labels the tiles), with a report."""
    from crackal.change.api import simulate
    from crackal.change.train import ChangeTrainConfig

    report = simulate(data, out, strategy, tile=tile, heldout=heldout, seeds=seeds, test_per_class=test_per_class,
                      progress=progress_for(quiet).line, train=ChangeTrainConfig(base_channels=base_channels, depth=depth, steps=steps, epochs=epochs),
                      initial_per_class=initial, query_size=query_size, rounds=rounds, ensemble_size=ensemble_size, iterations=iterations)
    console.print(f"report: {report}")
