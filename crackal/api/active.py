"""Active learning from Python: the jobs of ``crackal al ...`` and ``crackal simulate``.

>>> import crackal  # doctest: +SKIP
>>> crackal.al_init("project", "pool/", heldout_images="held/images", heldout_masks="held/masks")  # doctest: +SKIP
>>> crackal.al_step("project")        # train, score the pool, queue the next images  # doctest: +SKIP
>>> crackal.al_export_queue("project", "queue/")  # doctest: +SKIP

Training, scoring and reading images load on first use: ``al_status`` and ``al_config`` answer
without importing torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from crackal.active.config import ALConfig
from crackal.active.lock import project_lock
from crackal.active.store import open_project
from crackal.errors import CrackalError, choose
from crackal.progress import Progress
from crackal.runs.config import DetectionConfig, TrainConfig

if TYPE_CHECKING:
    from crackal.active.loop import RoundResult


def al_init(
    project: str | Path,
    images: str | Path,
    *,
    masks: str | Path | None = None,
    heldout_images: str | Path | None = None,
    heldout_masks: str | Path | None = None,
    heldout: float = 0.2,
    classes: str | list[str] | None = None,
    train: TrainConfig | DetectionConfig | dict | None = None,
    **options,
) -> dict:
    """Create a project: register the pool and the held-out set, queue the first images.

    With ground-truth ``masks`` for the pool (or ``images`` a dataset root with ``masks/``) the
    project is a simulation; otherwise a person labels, and ``heldout_images`` /
    ``heldout_masks`` measure each round. ``options`` are ``ALConfig`` fields (``query_size``,
    ``strategy`` ...), ``train`` the round's training options (``TrainConfig`` fields, or
    ``DetectionConfig`` fields with ``task="detection"``). Returns a summary of the project.
    """
    from crackal.active.config import round_training
    from crackal.active.project import create_project, find_project_images

    recipe = round_training(options.get("task", "segmentation"), _train_options(train))  # what ALConfig makes of the dict
    config = ALConfig(**options, train=recipe)  # bad options fail before any image is read
    found = find_project_images(images, masks, heldout_images, heldout_masks, heldout, classes, config.seed)
    config = ALConfig.from_dict({**config.to_dict(), "simulation": found.simulation,
                                 "train": {**recipe.to_dict(), "class_names": found.class_names}})
    create_project(project, found.pool, found.heldout, config).close()
    return {"pool": len(found.pool), "heldout": len(found.heldout), "queued": min(config.initial, len(found.pool)),
            "simulation": found.simulation, "class_names": found.class_names}


def _train_options(train: TrainConfig | DetectionConfig | dict | None) -> dict:
    return train.to_dict() if isinstance(train, (TrainConfig, DetectionConfig)) else dict(train or {})


def al_step(project: str | Path, progress: bool | Progress = True, ray: str | None = None) -> RoundResult:
    """One round (or the rest of an interrupted one): in a simulation label the queue from the
    ground truth; train; evaluate on the held-out set; score the pool (on Ray with ``ray``: an
    address, ``auto`` or ``local``); queue the next images."""
    from crackal.active.loop import run_round

    return run_round(project, progress, ray)


def al_run(project: str | Path, rounds: int | None = None, progress: bool | Progress = True, on_round=None) -> str:
    """Rounds until the budget, a plateau, low uncertainty or ``rounds`` in total; returns why it stopped."""
    from crackal.active.loop import run_loop

    return run_loop(project, rounds, progress, on_round)


def al_export_queue(project: str | Path, out: str | Path, force: bool = False, format: str = "files",
                    url_prefix: str | None = None, document_root: str | Path = "/") -> Path:
    """The images waiting for labels, with the latest model's pre-annotations, in ``out``
    (a folder holding an earlier export is written over only with ``force``).

    ``format="files"``: images, masks (or VOC boxes) and queue.csv; ``"label-studio"``: Label
    Studio tasks (``out/tasks.json``, image URLs ``url_prefix`` + the path under
    ``document_root``, Label Studio's local files by default) and ``out/label_config.xml``.
    """
    from crackal.active.label_studio import LOCAL_FILES, export_tasks
    from crackal.active.labels import export_queue
    from crackal.options import LABEL_FORMATS

    choose(LABEL_FORMATS, format, "format")
    store, config = open_project(project)
    with store:
        if format == "label-studio":
            return export_tasks(store, out, config, url_prefix or LOCAL_FILES, document_root, force)
        return export_queue(store, out, config, force)


def al_import(project: str | Path, source: str | Path, labeller: str = "person", binarize: bool = False,
              overwrite: bool = False, format: str = "files") -> int:
    """Import a labeller's masks (or VOC boxes) from the folder ``source`` or, with
    ``format="label-studio"``, a Label Studio JSON export (each task's latest annotation that was
    not skipped; its annotator is the labeller). All are checked before any is stored, and images
    already labelled are re-labelled only with ``overwrite``."""
    from crackal.active.label_studio import import_export
    from crackal.active.labels import import_labels
    from crackal.options import LABEL_FORMATS

    choose(LABEL_FORMATS, format, "format")
    if format == "files" and Path(source).suffix.lower() == ".json":
        raise CrackalError(f"{source} is a JSON file, not a folder of masks; for a Label Studio export pass "
                           "--format label-studio (format='label-studio')")
    store, config = open_project(project)
    with store:
        if format == "label-studio":
            return import_export(store, source, config, overwrite)
        return import_labels(store, source, len(config.class_names), labeller, binarize, overwrite)


def al_export(project: str | Path, out: str | Path, format: str = "coco", force: bool = False,
              url_prefix: str | None = None, document_root: str | Path = "/") -> Path:
    """Every labelled pool image and its current label in ``out`` as a dataset of another tool's
    format (``coco``: ``out/annotations.json`` and ``out/images/``; ``label-studio``: tasks with
    the labels as annotations, each with its measured labelling time as ``lead_time``, in
    ``out/tasks.json``; image URLs as in ``al_export_queue``); returns the annotation file.
    A folder holding an earlier export is written over only with ``force``."""
    from crackal.active.coco_export import export_coco
    from crackal.active.label_studio import LOCAL_FILES, export_annotations

    choose(("coco", "label-studio"), format, "format")
    store, config = open_project(project)
    with store:
        if format == "label-studio":
            return export_annotations(store, out, config, url_prefix or LOCAL_FILES, document_root, force)
        return export_coco(store, out, config, force)


def al_config(project: str | Path, settings: list[str] | None = None) -> ALConfig:
    """The project's settings; with ``settings`` (``KEY=VALUE``, e.g. ``train.epochs=30``)
    change them first (checked like a new project's; the next round uses them)."""
    if not settings:
        store, config = open_project(project)
        store.close()
        return config
    with project_lock(project, "crackal al config --set"):
        store, config = open_project(project)
        with store:
            config = config.with_settings(settings)
            store.replace_settings(config.to_dict())
            return config


def al_status(project: str | Path) -> dict:
    """Counts of labelled, queued, pool and held-out images, the settings, every round, the
    learning-curve forecast (``crackal.active.forecast``), the stop advice (None: go on) and the
    measured labelling effort (``crackal.active.effort``: which seconds per image the figures use)."""
    from crackal.active.effort import effort_summary, seconds_per_image
    from crackal.active.forecast import forecast_labels
    from crackal.active.stop_set import stop_advice
    from crackal.app.dashboard import headline_score

    store, config = open_project(project)
    with store:
        rounds = store.rounds()
        scored = [r for r in rounds if r["metrics"]]
        timed = store.label_efforts()
        seconds, source = seconds_per_image(timed, config.seconds_per_image)
        forecast = forecast_labels([r["labelled"] for r in scored], [headline_score(r["metrics"]) for r in scored],
                                   len(store.images("role = 'pool'")), config.cost_per_image, seconds)
        return {"config": config, "labelled": len(store.labelled()), "queued": len(store.queue()),
                "pool": len(store.unlabelled()), "heldout": len(store.heldout()), "rounds": rounds,
                "forecast": forecast, "stop_advice": stop_advice(rounds, config),
                "effort": {**effort_summary(timed), "seconds_per_image": seconds, "seconds_source": source}}


def al_report(project: str | Path, out: str | Path | None = None) -> Path:
    """Learning curves, class balance of the selections, cost and time (PNG, JSON, Markdown)."""
    from crackal.active.report import project_history, write_report

    project = Path(project)
    store, config = open_project(project)
    store.close()
    assert config.strategy is not None  # ALConfig fills in the task's default
    return write_report({config.strategy: [project_history(project)]}, out or project / "report", title=f"Project {project.name}")


def simulate(
    data: str | Path,
    out: str | Path,
    strategies: list[str] | tuple[str, ...] = ("bald", "random"),
    *,
    masks: str | Path | None = None,
    classes: str | list[str] | None = None,
    seeds: int = 3,
    rounds: int = 5,
    heldout: float = 0.2,
    split_file: str | Path | None = None,
    tile: int | None = None,
    reference: bool = True,
    progress: bool | Progress = False,
    on_round=None,
    train: TrainConfig | dict | None = None,
    ray: str | None = None,
    **options,
) -> Path:
    """Simulated active learning on a fully labelled dataset (the ground truth labels): every
    strategy for ``seeds`` repetitions, learning curves against random; returns the report.

    ``options`` are ``ALConfig`` fields (``round_steps="auto"``, ``warm_start=True`` ...) or
    ``crack_free_share`` (mix the pool to that share of crack-free images), ``train`` the
    round's training options; a strategy ``NAME+warm`` warm-starts that run's rounds.

    ``ray`` (an address, ``auto`` or ``local``) runs each seed, with all its strategies, and the
    whole-pool reference as Ray tasks (``crackal.active.simulate_ray``); ``out`` and ``data`` must
    then be on a file system every node sees. The report is the one a local run writes.
    """
    from crackal.active.simulate import simulate as simulate_pairs
    from crackal.data.layout import open_dataset

    pairs, names, _ = open_dataset(data, masks, classes)
    run = dict(seeds=seeds, rounds=rounds, heldout=heldout, split_file=split_file, tile=tile, reference=reference,
               progress=progress, on_round=on_round, train={**_train_options(train), "class_names": names}, **options)
    if ray is not None:
        from crackal.active.simulate_ray import simulate_on_ray

        return simulate_on_ray(pairs, out, list(strategies), ray=ray, **run)
    return simulate_pairs(pairs, out, list(strategies), **run)
