"""Prediction and pool scoring as Ray Data jobs: the inputs as a dataset of paths, ``map_batches``
over an actor pool whose actors load the model once, the results gathered by the driver.

The actors write a prediction's files themselves (``OUT`` must be a folder every worker can
write: a shared file system on a cluster) and return its measurement record; the driver writes
``measurements.csv/.json``. Scores come back to the driver, which stores them in the project as
the local path does. Both give the local path's results: the same code runs on each image, and
each group of pool images draws its dropout masks from its own seed (``group_seed``).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import cast

import numpy as np

from crackal.acquisition.heuristics import STRATEGIES
from crackal.acquisition.reduce import REDUCTIONS
from crackal.errors import CrackalError, choose
from crackal.options import METHODS, Method, Reduction
from crackal.progress import Progress
from crackal.scale.cluster import ActorPlan, cluster_plan, compute, connect

IMAGES_PER_CALL = 4  # images an actor predicts per map_batches call


def _quiet_data(ray) -> None:
    """crackal's own progress bar replaces Ray Data's."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False


class FolderPredictor:
    """A Ray Data callable class: loads the run once, predicts a batch of image paths, writes
    their outputs and returns ``{"position", "record"}`` (the record as JSON; ``null`` for a
    skipped image, ``{"error": ...}`` for an image the local path would have refused)."""

    def __init__(self, checkpoint: str, out: str, options: dict, threads: int, device: str) -> None:
        import torch

        from crackal.inference.outputs import make_predictor

        torch.set_num_threads(threads)
        self.out = Path(out)
        self.skip_invalid = options.pop("skip_invalid")
        self.gsd = options.pop("gsd")
        self.batch_size = options.pop("batch_size")
        self.defects = options.pop("defects")
        self.predictor, self.config, self.threshold = make_predictor(checkpoint, device=device, threads=threads, **options)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Predict and write each image of the batch; its records, by position."""
        from crackal.data.io import read_image
        from crackal.inference.outputs import write_prediction

        readable, by_position = [], {}
        for position, path in zip(batch["position"], map(Path, batch["path"])):
            try:
                readable.append((int(position), path, read_image(path)))
            except CrackalError as exc:
                by_position[int(position)] = None if self.skip_invalid else {"error": str(exc)}
        last = time.perf_counter()
        for (position, path), image, probs in self.predictor.stream((((p, f), i) for p, f, i in readable), self.batch_size):
            now = time.perf_counter()
            by_position[position] = write_prediction(self.out, path, image, probs, self.threshold, self.config, self.gsd, now - last,
                                                  self.defects)
            last = now
        records = [by_position[int(p)] for p in batch["position"]]
        return {"position": batch["position"], "record": np.array([json.dumps(r) for r in records])}


def _gather(ray, dataset, total: int, progress: Progress, desc: str, unit: str) -> list[dict]:
    rows = []
    bar = progress.bar(dataset.iter_rows(), total=total, desc=desc, unit=unit)
    for row in bar:
        rows.append(dict(row))
    return rows


def _on_actors(ray, plan: ActorPlan, items: list[dict], actor: type, kwargs: dict, per_call: int = IMAGES_PER_CALL):
    """The Ray Data dataset of ``actor`` (a callable class, built once per actor with ``kwargs`` and
    the plan's ``threads`` and ``device``) mapped over ``items``, ``per_call`` rows a call, on the
    plan's actor pool; enough blocks for every actor to have work."""
    if 0 < len(items) < plan.actors:  # no idle actors
        plan = dataclasses.replace(plan, actors=len(items))
    blocks = max(1, min(len(items), 4 * plan.actors))
    return ray.data.from_items(items, override_num_blocks=blocks).map_batches(
        actor, batch_size=per_call, batch_format="numpy", compute=compute(ray, plan),
        num_cpus=plan.num_cpus, num_gpus=plan.num_gpus,
        fn_constructor_kwargs={**kwargs, "threads": plan.threads, "device": "cuda" if plan.num_gpus else "cpu"})


class PathWorker:
    """A Ray Data callable class for any per-file job: ``make(*args, threads=, device=)`` (a
    module-level function, so that Ray ships it by name) builds the job once per actor, a function
    from a file's path to its JSON-serialisable record; each batch of ``{"position", "path"}``
    returns ``{"position", "record"}`` (the record as JSON, ``{"error": ...}`` for a file the job
    refused with a ``CrackalError``)."""

    def __init__(self, make: Callable, args: tuple, threads: int, device: str) -> None:
        import torch

        torch.set_num_threads(threads)
        self.work = make(*args, threads=threads, device=device)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the job on each path of the batch."""
        records = []
        for path in batch["path"]:
            try:
                records.append(self.work(Path(path)))
            except CrackalError as exc:
                records.append({"error": str(exc)})
        return {"position": batch["position"], "record": np.array([json.dumps(r) for r in records])}


def map_paths_ray(make: Callable, args: tuple, paths: Sequence[Path], *, address: str | None = "local",
                  actors: int | None = None, progress: bool | Progress = False, desc: str = "on Ray",
                  unit: str = "images") -> list[dict]:
    """``[make(*args, threads=, device=)(path) for path in paths]`` on Ray: the job built once per
    actor (``actors`` of them: default one per GPU, else one per CPU; ``address`` as in
    ``connect``), its records in the order of ``paths``; the first file refused raises its error
    here. The paths must be readable on every node (a shared file system on a cluster)."""
    if not paths:
        return []
    ray = connect(address)
    _quiet_data(ray)
    plan = cluster_plan(ray, actors)
    items = [{"position": i, "path": str(Path(p).resolve())} for i, p in enumerate(paths)]
    dataset = _on_actors(ray, plan, items, PathWorker, {"make": make, "args": tuple(args)})
    rows = _gather(ray, dataset, len(items), Progress.of(progress), f"{desc} ({plan.actors} actors)", unit)
    records = [json.loads(row["record"]) for row in sorted(rows, key=lambda r: int(r["position"]))]
    errors = [r["error"] for r in records if isinstance(r, dict) and "error" in r]
    if errors:
        raise CrackalError(errors[0])
    return records


def predict_folder_ray(
    checkpoint: str | Path,
    inputs: str | Path,
    out: str | Path,
    *,
    address: str | None = "local",
    actors: int | None = None,
    gsd: float | None = None,
    skip_invalid: bool = False,
    progress: bool | Progress = True,
    workers: int | None = None,
    batch_size: int = 4,
    defects=False,
    heading: float | None = None,
    segments: str | Path | None = None,
    chainage: float | None = None,
    window: int = 2048,
    threads: int | None = None,
    **options,
) -> list[dict]:
    """``predict_folder`` on Ray: the same files and records. ``address`` as in ``connect``;
    ``actors`` model replicas (default one per GPU, else one per CPU); ``options`` are
    ``make_predictor``'s (threshold, tile_size, overlap, tta, engine, two_stage ...). Each actor
    batches the tiles of its images ``batch_size`` at a time; ``workers`` (this machine's reader
    threads) has no use here, and the actors run ``CPUs / actors`` ``threads`` each. With
    ``defects`` the actors find each image's defect instances and the driver writes the tables
    and the condition summary. GeoTIFFs and huge TIFFs are read in windows: each window is a Ray
    task (``raster_windows_ray``), the driver writes the mask and probability GeoTIFFs and finds
    their defects, as without Ray."""
    from crackal.inference.outputs import (
        check_prediction_options,
        image_files,
        is_raster,
        make_predictor,
        predict_rasters,
        raster_predictor,
        write_measurements,
    )
    from crackal.runs.checkpoint import resolve_checkpoint

    files, out = image_files(inputs), Path(out)
    defect_options = check_prediction_options(gsd, defects=defects, heading=heading, segments=segments, chainage=chainage,
                                              window=window)
    rasters = [path for path in files if is_raster(path, window)]
    photos = [path for path in files if path not in set(rasters)]
    checkpoint = resolve_checkpoint(checkpoint)
    # options checked (and a missing ONNX export written) here, once, rather than in every actor
    _, config, threshold = make_predictor(checkpoint, **options, load=False)
    bar = Progress.of(progress)
    records: list[dict] = []
    if photos:
        ray = connect(address)
        _quiet_data(ray)
        plan = cluster_plan(ray, actors)
        items = [{"position": i, "path": str(path.resolve())} for i, path in enumerate(photos)]
        dataset = _on_actors(ray, plan, items, FolderPredictor, {
            "checkpoint": str(checkpoint), "out": str(out.resolve()),
            "options": {**options, "gsd": gsd, "skip_invalid": skip_invalid, "batch_size": batch_size, "defects": defect_options}})
        rows = _gather(ray, dataset, len(photos), bar, f"predicting on Ray ({plan.actors} actors)", "images")
        records = [json.loads(row["record"]) for row in sorted(rows, key=lambda r: int(r["position"]))]
        errors = [r["error"] for r in records if r is not None and "error" in r]
        if errors:
            raise CrackalError(errors[0])
    map_windows = raster_windows_ray(raster_predictor, (str(checkpoint), options), address=address, actors=actors)
    raster_records, georefs = predict_rasters(rasters, out, None, config, threshold, gsd, window, options.get("overlap", 64),
                                              defect_options, bar, skip_invalid, map_windows=map_windows)
    records += raster_records
    order = {path.name: i for i, path in enumerate(files)}
    records = sorted((r for r in records if r is not None), key=lambda r: order[r["image"]])
    return write_measurements(records, out, threshold, gsd, inputs, options=defect_options, files=files, heading=heading,
                              georefs=georefs, segments=segments, chainage=chainage)


class PoolScorer:
    """A Ray Data callable class: loads the round's model(s) once and scores groups of pool
    images with ``score_group`` (each row: a group index and its image paths as JSON)."""

    def __init__(self, checkpoints: list[str], options: dict, threads: int, device: str) -> None:
        import torch

        from crackal.runs.checkpoint import load_model

        torch.set_num_threads(threads)
        models = [load_model(c, device)[0] for c in checkpoints]
        self.models = models if options["method"] == "ensemble" else models[0]
        self.options = options

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The scores of each group of the batch, by group index."""
        from crackal.acquisition.score import score_group
        from crackal.data.io import read_image

        scores = []
        for index, paths in zip(batch["index"], batch["paths"]):
            images = [read_image(p) for p in json.loads(paths)]
            scores.append(json.dumps(score_group(self.models, images, int(index), **self.options).tolist()))
        return {"index": batch["index"], "scores": np.array(scores)}


def score_pool_ray(
    checkpoints: Sequence[str | Path],
    paths: Sequence[str | Path],
    heuristic: str = "bald",
    reduction: str = "topk",
    method: str = "mc_dropout",
    iterations: int = 20,
    batch_size: int = 4,
    seed: int = 0,
    *,
    address: str | None = "local",
    actors: int | None = None,
    progress: bool | Progress = False,
) -> np.ndarray:
    """``score_pool`` on Ray for the images at ``paths``: the same scores, in the same order.
    ``checkpoints``: the round's model, or the ensemble's members (``method="ensemble"``)."""
    from crackal.acquisition.score import score_pool

    choose(STRATEGIES, heuristic, "strategy")
    choose(REDUCTIONS, reduction, "reduction")
    choose(METHODS, method, "method")
    if method == "mc_batchnorm":
        raise CrackalError("MC-BatchNorm draws labelled reference batches in this process; score it without --ray")
    if heuristic == "random" or not paths:  # no model to run: the local path is exact and instant
        images = np.zeros((len(paths), 0, 0, 3), np.uint8)  # only counted: random scores read no image
        return score_pool([], images, heuristic, cast(Reduction, reduction), cast(Method, method), iterations, batch_size,
                          seed=seed)  # reduction and method checked above
    ray = connect(address)
    _quiet_data(ray)
    plan = cluster_plan(ray, actors)
    groups = [{"index": g, "paths": json.dumps([str(p) for p in paths[start:start + batch_size]])}
              for g, start in enumerate(range(0, len(paths), batch_size))]
    options = {"heuristic": heuristic, "reduction": reduction, "method": method, "iterations": iterations, "seed": seed}
    dataset = _on_actors(ray, plan, groups, PoolScorer, {"checkpoints": [str(c) for c in checkpoints], "options": options},
                         per_call=1)
    rows = _gather(ray, dataset, len(groups), Progress.of(progress),
                   f"scoring pool on Ray ({len(paths)} images, {plan.actors} actors)", "batches")
    rows.sort(key=lambda r: int(r["index"]))
    return np.concatenate([np.asarray(json.loads(r["scores"]), np.float64) for r in rows])


class RasterWindows:
    """A Ray Data callable class: builds ``make(*args, threads=, device=)`` (image -> probabilities)
    once per actor and returns the ``predict_window`` outputs of the raster's windows at each
    ``(r0, c0)`` of a batch, as ``np.savez`` bytes."""

    def __init__(self, make: Callable, args: tuple, source: str, spec, threads: int, device: str) -> None:
        import torch

        torch.set_num_threads(threads)
        self.predict = make(*args, threads=threads, device=device)
        self.source, self.spec = source, spec

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Predict the windows of the batch."""
        import io

        from crackal.inference.raster import gdal_env, open_raster, predict_window

        results = []
        with gdal_env(), open_raster(self.source) as ds:
            for r0, c0 in zip(batch["r0"], batch["c0"]):
                buffer = io.BytesIO()
                np.savez(buffer, **predict_window(ds, self.predict, int(r0), int(c0), self.spec))
                results.append(buffer.getvalue())
        column = np.empty(len(results), object)
        column[:] = results
        return {"position": batch["position"], "result": column}


def raster_windows_ray(make: Callable, args: tuple, *, address: str | None = "local", actors: int | None = None):
    """A ``map_windows`` for ``predict_raster``: each window predicted as a Ray task on an actor
    that builds ``make(*args, threads=, device=)`` (an image -> probabilities function) once and
    reads its windows from the raster itself (a path every node can read); the outputs come back
    as they are done, and only this process writes the GeoTIFFs."""

    def map_windows(source: str, starts: list[tuple[int, int]], spec) -> Iterator[dict]:
        import io

        ray = connect(address)
        _quiet_data(ray)
        plan = cluster_plan(ray, actors)
        items = [{"position": i, "r0": r0, "c0": c0} for i, (r0, c0) in enumerate(starts)]
        dataset = _on_actors(ray, plan, items, RasterWindows,
                             {"make": make, "args": tuple(args), "source": str(Path(source).resolve()), "spec": spec},
                             per_call=1)
        for row in dataset.iter_rows():
            with np.load(io.BytesIO(row["result"])) as saved:
                yield {key: saved[key] if saved[key].ndim else saved[key].item() for key in saved.files}

    return map_windows
