"""``crackal al ...`` (a labelling project) and ``crackal simulate`` (experiments with the ground truth as labeller)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from crackal.cli_options import Downscale
from crackal.errors import CrackalError

al_app = typer.Typer(help="Active-learning projects: the model picks what to label next.", no_args_is_help=True)
console = Console()

Project = Annotated[Path, typer.Argument(help="Project folder (project.db, labels/, rounds/).")]
Strategy = Annotated[str, typer.Option(help="bald, entropy, variance, margin or random.")]


def _pairs_of(images: Path, masks: Optional[Path], classes, skip_invalid: bool = False):
    from crackal import api

    return api.open_dataset(images, masks, classes, skip_invalid)


def _print_round(result) -> None:
    m = result.metrics
    if m and m.get("task") == "detection":
        shown = f"held-out mAP@0.5 {m['map_50']:.3f}"
    else:
        shown = f"held-out F1 {m['strict']['f1']:.3f} strict / {m['tol2']['f1']:.3f} at 2 px (ODS)" if m else ""
    console.print(f"round {result.round}: {result.labelled} labelled, {shown}; selected {len(result.selected)} for labelling")


@al_app.command("init")
def init(
    project: Project,
    images: Annotated[Path, typer.Option(help="Pool images (a folder, or a dataset root with images/ and masks/).")],
    masks: Annotated[Optional[Path], typer.Option(help="Ground-truth masks of the pool: the run is a simulation.")] = None,
    heldout_images: Annotated[Optional[Path], typer.Option(help="Held-out images (with --heldout-masks).")] = None,
    heldout_masks: Annotated[Optional[Path], typer.Option(help="Held-out masks.")] = None,
    heldout: Annotated[float, typer.Option(help="With --masks and no held-out folders: share (<1) or count of images held out.")] = 0.2,
    initial: Annotated[int, typer.Option(help="Images labelled before the first round.")] = 10,
    step: Annotated[int, typer.Option(help="Images selected per round.")] = 10,
    task: Annotated[str, typer.Option(help="segmentation (masks) or detection (RetinaNet boxes; masks or VOC .xml labels).")] = "segmentation",
    strategy: Annotated[Optional[str], typer.Option(help="Segmentation: bald (default), entropy, variance, margin or random. Detection: disagreement (default) or random.")] = None,
    reduction: Annotated[str, typer.Option(help="mean, max, topk (mean of the top 5 % pixels) or crack_region.")] = "topk",
    method: Annotated[str, typer.Option(help="mc_dropout, mc_batchnorm or ensemble (detection: head dropout or ensemble).")] = "mc_dropout",
    backbone: Annotated[str, typer.Option(help="Detection: resnet18, resnet34 or resnet50.")] = "resnet18",
    image_size: Annotated[int, typer.Option(help="Detection: short image side in px (0 keeps the size).")] = 0,
    iterations: Annotated[int, typer.Option(help="Stochastic passes per image.")] = 20,
    selection: Annotated[str, typer.Option(help="top or stochastic (score^(1/T) sampling).")] = "top",
    cold_start: Annotated[str, typer.Option(help="random or coreset (k-center on encoder features).")] = "random",
    budget: Annotated[Optional[int], typer.Option(help="Stop when this many images are labelled.")] = None,
    epochs: Annotated[int, typer.Option(help="Training epochs per round.")] = 12,
    crop_size: Annotated[int, typer.Option(help="Training crop size.")] = 256,
    downscale: Downscale = 1,
    classes: Annotated[Optional[str], typer.Option(help="Class names, background first, comma-separated.")] = None,
    cost_per_image: Annotated[float, typer.Option(help="Labelling cost per image ($), for reports.")] = 0.5,
    seconds_per_image: Annotated[float, typer.Option(help="Labelling time per image (s), for reports.")] = 30.0,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Create a project: register the pool and the held-out set, queue the first images."""
    from crackal.active.config import ALConfig
    from crackal.active.loop import create_project
    from crackal.data.io import list_images
    from crackal.data.splits import make_split

    if masks is not None or (images / "masks").is_dir():
        pairs, names, _ = _pairs_of(images, masks, classes)
        pool = [(p.name, p.image, p.mask) for p in pairs]
        simulation = True
    else:
        from crackal.api import resolve_class_names

        names = resolve_class_names(images, classes)
        pool = [(p.stem, p, None) for p in list_images(images)]
        simulation = False
    if heldout_images is not None:
        held_pairs, _, _ = _pairs_of(heldout_images, heldout_masks, names)
        held = [(p.name, p.image, p.mask) for p in held_pairs]
    elif simulation:
        split = make_split([n for n, _, _ in pool], val=0, test=heldout, seed=seed)
        held = [row for row in pool if row[0] in set(split["test"])]
        pool = [row for row in pool if row[0] in set(split["train"])]
    else:
        raise CrackalError("a held-out set with masks measures each round: pass --heldout-images and --heldout-masks")
    strategy = strategy or ("disagreement" if task == "detection" else "bald")
    config = ALConfig(task=task, backbone=backbone, image_size=image_size, strategy=strategy, reduction=reduction, method=method, iterations=iterations, selection=selection,
                      batch=step, initial=initial, cold_start=cold_start, seed=seed, class_names=names,
                      simulation=simulation, budget=budget, epochs=epochs, crop_size=crop_size, downscale=downscale,
                      cost_per_image=cost_per_image, seconds_per_image=seconds_per_image)
    create_project(project, pool, held, config).close()
    mode = "simulation (the ground truth labels)" if simulation else "labelling project (a person labels)"
    console.print(f"{project}: {len(pool)} pool images, {len(held)} held out, {min(initial, len(pool))} queued; {mode}")


@al_app.command("step")
def step(project: Project) -> None:
    """One round: (label the queue in a simulation,) train, evaluate, score the pool, select."""
    from crackal.active.loop import run_round

    _print_round(run_round(project, progress=True))


@al_app.command("run")
def run(
    project: Project,
    rounds: Annotated[Optional[int], typer.Option(help="Stop when the project has this many rounds in total.")] = None,
) -> None:
    """Rounds until the budget, a plateau, low uncertainty or --rounds stops it (simulation)."""
    from crackal.active.loop import run_loop

    console.print(f"stopped: {run_loop(project, rounds, progress=True, on_round=_print_round)}")


@al_app.command("resume")
def resume(
    project: Project,
    rounds: Annotated[Optional[int], typer.Option(help="Total rounds to reach.")] = None,
) -> None:
    """Finish an interrupted round (training resumes from its last checkpoint), then go on."""
    run(project, rounds)


@al_app.command("export-queue")
def export_queue(
    project: Project,
    out: Annotated[Path, typer.Argument(help="Folder for images/, masks/ (pre-annotations) and queue.csv.")],
) -> None:
    """Write the images to label, with the current model's prediction as a pre-annotation
    (masks, or VOC boxes for a detection project)."""
    from crackal.active.labels import export_queue as export
    from crackal.active.loop import open_project
    from crackal.data.io import read_image

    store, config = open_project(project)
    try:
        prelabels = None
        finished = [r for r in store.rounds() if r["checkpoint"]]
        if finished:
            images = {record.name: read_image(record.path) for record, _, _ in store.queue()}
            prelabels = _prelabels(finished[-1]["checkpoint"], images, config.task)
        folder = export(store, out, prelabels, config.class_names, config.task)
        what = "boxes (VOC .xml)" if config.task == "detection" else "masks"
        console.print(f"{len(store.queue())} images to label in {folder}/images; correct the {what} in {folder}, "
                      f"then: crackal al import {project} {folder}")
    finally:
        store.close()


def _prelabels(checkpoint: str, images: dict, task: str) -> dict:
    """The latest model's prediction of each image: a class mask, or boxes above the detector's threshold."""
    if task == "detection":
        from crackal.inference.detect import detect_image
        from crackal.training.detection import load_detector

        detector, state = load_detector(checkpoint)
        return {name: detect_image(detector, image).above(state.get("threshold", 0.5)) for name, image in images.items()}
    from crackal.inference.predict import predict_image
    from crackal.inference.render import class_mask_from_probs
    from crackal.training.checkpoint import load_model

    model, state = load_model(checkpoint)
    return {name: class_mask_from_probs(predict_image(model, image), state.get("threshold", 0.5)) for name, image in images.items()}


@al_app.command("import")
def import_(
    project: Project,
    folder: Annotated[Path, typer.Argument(help="Folder of masks or VOC .xml boxes (or with a masks/ or boxes/ sub-folder) named like the images.")],
    labeller: Annotated[str, typer.Option(help="Who labelled them (stored with each label).")] = "person",
    binarize: Annotated[bool, typer.Option(help="Binary masks: any value >= 128 is crack.")] = False,
) -> None:
    """Import masks (or VOC boxes) from the labeller; all are checked before any is stored."""
    from crackal.active.labels import import_labels
    from crackal.active.loop import open_project

    store, config = open_project(project)
    try:
        count = import_labels(store, folder, len(config.class_names), labeller, binarize)
        console.print(f"imported {count} labels; {len(store.queue())} still queued")
    finally:
        store.close()


@al_app.command("status")
def status(project: Project) -> None:
    """Labelled / queued / pool counts and every round's held-out scores."""
    from crackal.active.loop import open_project
    from crackal.active.scores import LABELS, round_scores

    store, config = open_project(project)
    try:
        console.print(
            f"{project}: strategy {config.strategy} ({config.method}, {config.reduction}), "
            f"{len(store.labelled())} labelled, {len(store.queue())} queued, {len(store.unlabelled())} in the pool, "
            f"{len(store.heldout())} held out"
        )
        labels = LABELS[config.task]
        table = Table(title=f"rounds (held-out, {labels['protocol']})")
        for column in ("round", "state", "labelled", labels["score"], labels["precision"], labels["recall"], labels["score_2"],
                       "loss", "pool uncertainty"):
            table.add_column(column)
        for r in store.rounds():
            scores = round_scores(r["metrics"]) if r["metrics"] else {}
            cells = ["-" if scores.get(k) is None else f"{scores[k]:.3f}" for k in ("score", "precision", "recall", "score_2", "loss")]
            unc = "-" if r["pool_uncertainty"] is None else f"{r['pool_uncertainty']:.4g}"
            table.add_row(str(r["round"]), r["state"], str(r["labelled"]), *cells, unc)
        console.print(table)
    finally:
        store.close()


@al_app.command("report")
def report(
    project: Project,
    out: Annotated[Optional[Path], typer.Option(help="Report folder (default PROJECT/report).")] = None,
) -> None:
    """Learning curves, class balance of the selections, cost and time (PNG, JSON, Markdown)."""
    from crackal.active.loop import open_project
    from crackal.active.report import project_history, write_report

    store, config = open_project(project)
    store.close()
    path = write_report({config.strategy: [project_history(project)]}, out or project / "report", title=f"Project {project.name}")
    console.print(f"report: {path}")


def simulate(
    data: Annotated[Path, typer.Argument(help="A fully labelled dataset (images/ + masks/).")],
    out: Annotated[Path, typer.Option(help="Experiment folder (one project per strategy and seed, the report).")] = Path("runs/simulate"),
    strategy: Annotated[list[str], typer.Option(help="Repeatable: bald, entropy, variance, margin, random.")] = ["bald", "random"],  # noqa: B006
    initial: Annotated[int, typer.Option(help="Images labelled before the first round.")] = 10,
    step: Annotated[int, typer.Option(help="Images selected per round.")] = 10,
    rounds: Annotated[int, typer.Option(help="Training rounds per run.")] = 5,
    seeds: Annotated[int, typer.Option(help="Repetitions with different initial sets.")] = 3,
    heldout: Annotated[float, typer.Option(help="Held-out share (<1) or count.")] = 0.2,
    split_file: Annotated[Optional[Path], typer.Option(help="split.json: its test images are held out, the rest is the pool.")] = None,
    tile: Annotated[Optional[int], typer.Option(help="Cut pool images into tiles of this size.")] = None,
    reduction: Annotated[str, typer.Option(help="mean, max, topk (mean of the top 5 % pixels) or crack_region.")] = "topk",
    method: Annotated[str, typer.Option(help="mc_dropout, mc_batchnorm or ensemble.")] = "mc_dropout",
    iterations: Annotated[int, typer.Option(help="Stochastic passes per image.")] = 20,
    epochs: Annotated[int, typer.Option(help="Training epochs per round.")] = 12,
    crop_size: Annotated[int, typer.Option(help="Training crop size.")] = 256,
    downscale: Downscale = 1,
    reference: Annotated[bool, typer.Option(help="Also train on the whole pool for the reference F1.")] = True,
    cost_per_image: Annotated[float, typer.Option(help="Labelling cost per image ($).")] = 0.5,
    seconds_per_image: Annotated[float, typer.Option(help="Labelling time per image (s).")] = 30.0,
) -> None:
    """Simulated active learning (the ground truth labels): learning curves against random."""
    from crackal.active.simulate import simulate as run_simulation

    pairs, names, _ = _pairs_of(data, None, None)
    report_path = run_simulation(
        pairs, out, strategy, seeds=seeds, rounds=rounds, heldout=heldout, split_file=split_file, tile=tile,
        reference=reference, progress=lambda item: _print_round(item) if not isinstance(item, str) else console.print(item),
        initial=initial, batch=step, reduction=reduction, method=method, iterations=iterations, epochs=epochs,
        crop_size=crop_size, downscale=downscale, class_names=names, cost_per_image=cost_per_image, seconds_per_image=seconds_per_image,
    )
    console.print(f"report: {report_path}")
