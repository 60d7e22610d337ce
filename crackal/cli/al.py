"""``crackal al ...`` (a labelling project) and ``crackal simulate`` (experiments with the ground truth as labeller)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from crackal.cli.options import (
    Classes,
    CostPerImage,
    Downscale,
    Initial,
    Iterations,
    QuerySize,
    Quiet,
    RayAddress,
    Reduction,
    RoundCrop,
    RoundEpochs,
    RoundSteps,
    SecondsPerImage,
    Seed,
    Settings,
    WarmStart,
    console,
    progress_for,
)

app = typer.Typer(help="Active-learning projects: the model picks what to label next.", no_args_is_help=True)

Project = Annotated[Path, typer.Argument(help="Project folder (project.db, labels/, rounds/).")]
Method = Annotated[str, typer.Option(help="mc_dropout, mc_batchnorm or ensemble (detection: head dropout or ensemble).")]


def _settings(settings: list[str] | None, task: str = "segmentation") -> tuple[dict, dict]:
    """``--set`` assignments split into ALConfig fields and round training options (``train.*``)."""
    from crackal.active.config import ALConfig

    config = ALConfig(task=task).with_settings(settings or [])  # checks the names and values
    chosen = {s.partition("=")[0].strip() for s in settings or []}
    al_options = {k: v for k, v in config.to_dict().items() if k in chosen and k != "train"}
    train = {k: v for k, v in config.to_dict()["train"].items() if f"train.{k}" in chosen}
    return al_options, train


def print_round(result) -> None:
    """Print one line about a finished round: the held-out score and the number of images selected."""
    m = result.metrics
    if m and m.get("task") == "detection":
        shown = f"held-out mAP@0.5 {m['map_50']:.3f}"
    else:
        shown = f"held-out F1 {m['strict']['f1']:.3f} strict / {m['tol2']['f1']:.3f} at 2 px (ODS)" if m else ""
    console.print(f"round {result.round}: {result.labelled} labelled, {shown}; selected {len(result.selected)} for labelling")


@app.command("init")
def init(
    project: Project,
    images: Annotated[Path, typer.Option(help="Pool images (a folder, or a dataset root with images/ and masks/).")],
    masks: Annotated[Path | None, typer.Option(help="Ground-truth masks of the pool: the run is a simulation.")] = None,
    heldout_images: Annotated[Path | None, typer.Option(help="Held-out images (with --heldout-masks): required when the pool has no masks (a person labels); they score every round.")] = None,
    heldout_masks: Annotated[Path | None, typer.Option(help="Held-out masks, labelled by hand once (e.g. 20-50 images like the pool's).")] = None,
    heldout: Annotated[float, typer.Option(help="With --masks and no held-out folders: share (<1) or count of images held out.")] = 0.2,
    initial: Initial = 10,
    query_size: QuerySize = 10,
    task: Annotated[str, typer.Option(help="segmentation (masks) or detection (RetinaNet boxes; masks or VOC .xml labels).")] = "segmentation",
    strategy: Annotated[str | None, typer.Option(help="Segmentation: bald (default), entropy, variance, margin or random. Detection: disagreement (default) or random.")] = None,
    reduction: Reduction = "topk",
    method: Method = "mc_dropout",
    iterations: Iterations = 20,
    selection: Annotated[str, typer.Option(help="top, stochastic (score^(1/T) sampling) or diverse (the most uncertain image of each cluster of encoder embeddings: no near-duplicate frames in a batch).")] = "top",
    cold_start: Annotated[str, typer.Option(help="random or coreset (k-center on encoder features).")] = "random",
    budget: Annotated[int | None, typer.Option(help="Stop when this many images are labelled.")] = None,
    epochs: RoundEpochs = 12,
    round_steps: RoundSteps = None,
    warm_start: WarmStart = False,
    crop_size: RoundCrop = 256,
    downscale: Downscale = 1,
    backbone: Annotated[str, typer.Option(help="Detection: resnet18, resnet34 or resnet50.")] = "resnet18",
    image_size: Annotated[int, typer.Option(help="Detection: short image side in px (0 keeps the size).")] = 0,
    classes: Classes = None,
    cost_per_image: CostPerImage = 0.5,
    seconds_per_image: SecondsPerImage = 30.0,
    seed: Seed = 0,
    settings: Settings = None,
) -> None:
    """Create a project: register the pool and the held-out set, queue the first images.

    A labelling project (pool without masks) needs a held-out set with masks (--heldout-images,
    --heldout-masks), which scores every round; a simulation (--masks) holds out --heldout of its pool.

    Every other project setting or round training option: --set KEY=VALUE (see 'crackal al config').
    """
    from crackal import api

    al_options, train = _settings(settings, task)
    shape = {"backbone": backbone, "image_size": image_size} if task == "detection" else {"crop_size": crop_size, "downscale": downscale}
    options = {"task": task, "strategy": strategy, "reduction": reduction, "method": method, "iterations": iterations,
               "selection": selection, "query_size": query_size, "initial": initial, "cold_start": cold_start, "seed": seed,
               "budget": budget, "cost_per_image": cost_per_image, "seconds_per_image": seconds_per_image,
               "round_steps": round_steps, "warm_start": warm_start}
    summary = api.al_init(project, images, masks=masks, heldout_images=heldout_images, heldout_masks=heldout_masks,
                          heldout=heldout, classes=classes, train={"epochs": epochs, **shape, **train},
                          **{**options, **al_options})
    mode = "simulation (the ground truth labels)" if summary["simulation"] else "labelling project (a person labels)"
    console.print(f"{project}: {summary['pool']} pool images, {summary['heldout']} held out, {summary['queued']} queued; {mode}")


@app.command("step")
def step(project: Project, ray: RayAddress = None, quiet: Quiet = False) -> None:
    """One round: (label the queue in a simulation,) train, evaluate, score the pool, select."""
    from crackal import api

    print_round(api.al_step(project, progress=progress_for(quiet), ray=ray))


@app.command("run")
def run(
    project: Project,
    rounds: Annotated[int | None, typer.Option(help="Stop when the project has this many rounds in total.")] = None,
    quiet: Quiet = False,
) -> None:
    """Rounds until the budget, a plateau, low uncertainty or --rounds stops it (simulation)."""
    from crackal import api

    console.print(f"stopped: {api.al_run(project, rounds, progress=progress_for(quiet), on_round=print_round)}")


@app.command("resume")
def resume(
    project: Project,
    rounds: Annotated[int | None, typer.Option(help="Total rounds to reach.")] = None,
    quiet: Quiet = False,
) -> None:
    """Finish an interrupted round (training resumes from its last checkpoint), then go on."""
    run(project, rounds, quiet)


@app.command("config")
def config(project: Project, settings: Settings = None) -> None:
    """Show the project's settings; --set KEY=VALUE changes them between rounds (e.g. --set train.epochs=30)."""
    from crackal import api

    current = api.al_config(project, settings)
    table = Table(title=f"{project} settings" + (" (changed; the next round uses them)" if settings else ""))
    table.add_column("setting")
    table.add_column("value")
    for key, value in current.to_dict().items():
        if key != "train":
            table.add_row(key, str(value))
    for key, value in current.to_dict()["train"].items():
        table.add_row(f"train.{key}", str(value))
    console.print(table)


LabelFormat = Annotated[str, typer.Option("--format", help="files (images, masks or VOC boxes) or label-studio (tasks JSON).")]


@app.command("export-queue")
def export_queue(
    project: Project,
    out: Annotated[Path, typer.Argument(help="Folder for images/, masks/ (pre-annotations) and queue.csv, or for Label Studio tasks.json.")],
    force: Annotated[bool, typer.Option(help="Write over a folder that holds an earlier export (its corrected labels are lost).")] = False,
    format: LabelFormat = "files",
    url_prefix: Annotated[str | None, typer.Option(help="Label Studio: image URL prefix (default /data/local-files/?d=, Label Studio's local files).")] = None,
    document_root: Annotated[Path, typer.Option(help="Label Studio: image URLs are the prefix + the image's path under this folder.")] = Path("/"),
) -> None:
    """Write the images to label, with the current model's prediction as a pre-annotation
    (masks, or VOC boxes for a detection project; or Label Studio tasks with predictions)."""
    from crackal import api

    written = api.al_export_queue(project, out, force, format, url_prefix, document_root)
    queued = api.al_status(project)["queued"]
    if format == "label-studio":
        console.print(f"{queued} Label Studio tasks in {written}, labelling config in {written.parent / 'label_config.xml'}; "
                      f"import both into a Label Studio project, export its annotations as JSON, then: "
                      f"crackal al import {project} EXPORT.json --format label-studio")
    else:
        console.print(f"{queued} images to label in {written}/images; correct the pre-annotations next to them, "
                      f"then: crackal al import {project} {written}")


@app.command("import")
def import_(
    project: Project,
    source: Annotated[Path, typer.Argument(help="Folder of masks or VOC .xml boxes (or with a masks/ or boxes/ sub-folder) named like the images; or a Label Studio JSON export.")],
    labeller: Annotated[str, typer.Option(help="Who labelled them (stored with each label; Label Studio exports name their annotators).")] = "person",
    binarize: Annotated[bool, typer.Option(help="Binary masks: any value >= 128 is crack.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Re-label images that already have a label (the earlier labels stay in the history).")] = False,
    format: LabelFormat = "files",
) -> None:
    """Import masks (or VOC boxes, or a Label Studio export) from the labeller; all are checked before any is stored."""
    from crackal import api

    count = api.al_import(project, source, labeller, binarize, overwrite, format)
    console.print(f"imported {count} labels; {api.al_status(project)['queued']} still queued")


@app.command("export")
def export(
    project: Project,
    out: Annotated[Path, typer.Argument(help="Folder for annotations.json (tasks.json) and images/.")],
    format: Annotated[str, typer.Option(help="coco: COCO instances (one RLE mask per connected defect, or boxes); "
                                        "label-studio: tasks with the labels as annotations and the measured labelling "
                                        "time as lead_time.")] = "coco",
    force: Annotated[bool, typer.Option(help="Write over a folder that holds an earlier export.")] = False,
    url_prefix: Annotated[str | None, typer.Option(help="Label Studio: image URL prefix (default /data/local-files/?d=, Label Studio's local files).")] = None,
    document_root: Annotated[Path, typer.Option(help="Label Studio: image URLs are the prefix + the image's path under this folder.")] = Path("/"),
) -> None:
    """Write every labelled pool image and its current label as a dataset for other tools (COCO, Label Studio)."""
    from crackal import api

    path = api.al_export(project, out, format, force, url_prefix, document_root)
    console.print(f"wrote {api.al_status(project)['labelled']} labelled images to {path} and {path.parent / 'images'}")


@app.command("status")
def status(
    project: Project,
    as_json: Annotated[bool, typer.Option("--json", help="Print everything as one JSON object (counts, settings, rounds, "
                                          "forecast, stop advice, measured labelling effort).")] = False,
) -> None:
    """Labelled / queued / pool counts, every round's held-out scores and the measured labelling time."""
    from crackal import api
    from crackal.active.forecast import forecast_text
    from crackal.active.scores import LABELS, round_scores

    info = api.al_status(project)
    config = info["config"]
    if as_json:
        print(json.dumps({**info, "config": config.to_dict()}, indent=1, default=str))
        return
    console.print(
        f"{project}: strategy {config.strategy} ({config.method}, {config.reduction}), {info['labelled']} labelled, "
        f"{info['queued']} queued, {info['pool']} in the pool, {info['heldout']} held out"
    )
    labels = LABELS[config.task]
    table = Table(title=f"rounds (held-out, {labels['protocol']})")
    for column in ("round", "state", "labelled", labels["score"], labels["precision"], labels["recall"], labels["score_2"],
                   "loss", "pool uncertainty", "stop-set kappa"):
        table.add_column(column)
    for r in info["rounds"]:
        scores = round_scores(r["metrics"]) if r["metrics"] else {}
        cells = ["-" if scores.get(k) is None else f"{scores[k]:.3f}" for k in ("score", "precision", "recall", "score_2", "loss")]
        unc = "-" if r["pool_uncertainty"] is None else f"{r['pool_uncertainty']:.4g}"
        kappa = (r["metrics"] or {}).get("stop_kappa")
        table.add_row(str(r["round"]), r["state"], str(r["labelled"]), *cells, unc, "-" if kappa is None else f"{kappa:.4f}")
    console.print(table)
    console.print(forecast_text(info["forecast"], labels["score"]))
    effort = info["effort"]
    timed = (f"labelling time: {effort['measured']} labels timed in the app, median {effort['median_seconds']} s"
             if effort["measured"] else "labelling time: none measured yet")
    console.print(f"{timed}; cost figures use {effort['seconds_per_image']:.1f} s per image ({effort['seconds_source']})")
    if config.task == "segmentation" and config.stop_set_size:
        console.print(info["stop_advice"] or f"stop advice: go on (stop-set kappa not yet >= {config.stop_kappa} "
                                             f"for {config.stop_rounds} rounds)")


@app.command("report")
def report(
    project: Project,
    out: Annotated[Path | None, typer.Option(help="Report folder (default PROJECT/report).")] = None,
) -> None:
    """Learning curves, class balance of the selections, cost and time (PNG, JSON, Markdown)."""
    from crackal import api

    console.print(f"report: {api.al_report(project, out)}")


@app.command("backup")
def backup(
    project: Project,
    out: Annotated[Path, typer.Argument(help="New folder for the backup (never written over).")],
) -> None:
    """Back up a project while it is in use (crackal serve, a round): a snapshot of project.db,
    the label files and round folders it names, and manifest.json with their checksums."""
    from crackal import api

    manifest = api.al_backup(project, out)
    counts, files = manifest["counts"], manifest["files"]
    size = sum(f["bytes"] for f in files.values()) / 2**20
    console.print(f"backed up {project} to {out}: {counts['images']} images ({counts['pool']} pool, {counts['heldout']} held out), "
                  f"{counts['labels']} labels of {counts['labelled_images']} images, {counts['rounds']} rounds, {counts['users']} users; "
                  f"{len(files)} files, {size:.1f} MB", highlight=False)
    if manifest["outside"]:
        console.print(f"{len(manifest['outside'])} image and mask files outside the project are referenced by absolute path, "
                      "not copied (list in manifest.json): back them up too", highlight=False)
    if manifest["missing"]:
        console.print(f"warning: {len(manifest['missing'])} files the database names were missing and are not in the backup: "
                      f"{', '.join(manifest['missing'][:5])}", style="yellow", highlight=False)


@app.command("restore")
def restore(
    backup: Annotated[Path, typer.Argument(help="A folder made by 'crackal al backup'.")],
    project: Project,
    force: Annotated[bool, typer.Option(help="Replace an existing project (its current content is lost).")] = False,
) -> None:
    """Restore a backup as a project (checksums checked first); its users sign in again."""
    from crackal import api

    result = api.al_restore(backup, project, force)
    console.print(f"restored {backup} as {project}: {result['images']} images, {result['labels']} labels of "
                  f"{result['labelled_images']} images, {result['rounds']} rounds, {result['users']} users "
                  "(every session ended: users sign in again)", highlight=False)
    missing = result["missing_images"]
    if missing:
        console.print(f"warning: {len(missing)} image or mask files outside the project are not at their recorded paths on "
                      f"this machine (first: {missing[0]}): put them back at those paths; until then the app cannot show "
                      "them and rounds stop on them (the labels are restored)", style="yellow", highlight=False)


def simulate(
    data: Annotated[Path, typer.Argument(help="A fully labelled dataset (images/ + masks/).")],
    out: Annotated[Path, typer.Option(help="Experiment folder (one project per strategy and seed, the report).")] = Path("runs/simulate"),
    strategy: Annotated[list[str], typer.Option(help="Repeatable: bald, entropy, variance, margin, random; NAME+warm (e.g. bald+warm) warm-starts that run's rounds, NAME+diverse picks diverse batches, NAME+cost divides the score by the predicted labelling time (combinable: bald+warm+diverse+cost).")] = ["bald", "random"],  # noqa: B006
    initial: Initial = 10,
    query_size: QuerySize = 10,
    rounds: Annotated[int, typer.Option(help="Training rounds per run.")] = 5,
    seeds: Annotated[int, typer.Option(help="Repetitions with different initial sets.")] = 3,
    heldout: Annotated[float, typer.Option(help="Held-out share (<1) or count.")] = 0.2,
    split_file: Annotated[Path | None, typer.Option(help="split.json: its test images are held out, the rest is the pool.")] = None,
    tile: Annotated[int | None, typer.Option(help="Cut pool images into tiles of this size.")] = None,
    reduction: Reduction = "topk",
    method: Annotated[str, typer.Option(help="mc_dropout, mc_batchnorm or ensemble.")] = "mc_dropout",
    iterations: Iterations = 20,
    epochs: RoundEpochs = 12,
    round_steps: RoundSteps = None,
    warm_start: WarmStart = False,
    crop_size: RoundCrop = 256,
    downscale: Downscale = 1,
    crack_free_share: Annotated[float | None, typer.Option(help="Mix the pool (images or tiles) to this share of crack-free ones, e.g. 0.5.")] = None,
    reference: Annotated[bool, typer.Option(help="Also train on the whole pool for the reference F1.")] = True,
    cost_per_image: CostPerImage = 0.5,
    seconds_per_image: SecondsPerImage = 30.0,
    settings: Settings = None,
    ray: RayAddress = None,
    quiet: Quiet = False,
) -> None:
    """Simulated active learning (the ground truth labels): learning curves against random.

    With --ray each seed (all its strategies) and the reference run as Ray tasks; --out and DATA
    must be on a file system every node sees."""
    from crackal import api

    al_options, train = _settings(settings)
    progress = progress_for(quiet)
    report_path = api.simulate(
        data, out, strategy, seeds=seeds, rounds=rounds, heldout=heldout, split_file=split_file, tile=tile,
        reference=reference, progress=progress, crack_free_share=crack_free_share, ray=ray,
        on_round=lambda item: print_round(item) if not isinstance(item, str) else console.print(item),
        train={"epochs": epochs, "crop_size": crop_size, "downscale": downscale, **train},
        **{"initial": initial, "query_size": query_size, "reduction": reduction, "method": method, "iterations": iterations,
           "cost_per_image": cost_per_image, "seconds_per_image": seconds_per_image, "round_steps": round_steps,
           "warm_start": warm_start, **al_options},
    )
    console.print(f"report: {report_path}")
