"""Prediction and pool scoring as Ray Data jobs: the inputs as a dataset of paths, ``map_batches``
over an actor pool whose actors load the model once, the results gathered by the driver.

The actors write a prediction's files themselves (``OUT`` must be a folder every worker can
write: a shared file system on a cluster) and return its measurement record; the driver writes
``measurements.csv/.json``. Scores come back to the driver, which stores them in the project as
the local path does. Both give the local path's results: the same code runs on each image, and
each group of pool images draws its dropout masks from its own seed (``group_seed``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from crackal.acquisition.heuristics import STRATEGIES
from crackal.acquisition.reduce import REDUCTIONS
from crackal.errors import CrackalError, choose
from crackal.options import METHODS
from crackal.progress import Progress
from crackal.scale.cluster import cluster_plan, compute, connect

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
    **options,
) -> list[dict]:
    """``predict_folder`` on Ray: the same files and records. ``address`` as in ``connect``;
    ``actors`` model replicas (default one per GPU, else one per CPU); ``options`` are
    ``make_predictor``'s (threshold, tile_size, overlap, tta, engine, two_stage ...). Each actor
    batches the tiles of its images ``batch_size`` at a time; ``workers`` (this machine's reader
    threads) has no use here. With ``defects`` the actors find each image's defect instances and
    the driver writes the tables and the condition summary; GeoTIFFs and huge TIFFs (read in
    windows) are predicted without Ray."""
    from crackal.inference.outputs import check_prediction_options, image_files, is_raster, make_predictor, write_measurements
    from crackal.training.checkpoint import resolve_checkpoint

    files, out = image_files(inputs), Path(out)
    defect_options = check_prediction_options(gsd, defects=defects, heading=heading, segments=segments, chainage=chainage,
                                              window=window)
    rasters = [path.name for path in files if is_raster(path, window)]
    if rasters:
        raise CrackalError(f"{rasters[0]} is a GeoTIFF or a TIFF larger than four windows: those are predicted window by "
                           "window on one machine; leave out --ray for them")
    checkpoint = resolve_checkpoint(checkpoint)
    # options checked (and a missing ONNX export written) here, once, rather than in every actor
    _, _, threshold = make_predictor(checkpoint, **options, load=False)
    ray = connect(address)
    _quiet_data(ray)
    plan = cluster_plan(ray, actors)
    items = [{"position": i, "path": str(path.resolve())} for i, path in enumerate(files)]
    blocks = max(1, min(len(items), 4 * plan.actors))  # enough blocks for every actor to have work
    dataset = ray.data.from_items(items, override_num_blocks=blocks).map_batches(
        FolderPredictor, batch_size=IMAGES_PER_CALL, batch_format="numpy", compute=compute(ray, plan),
        num_cpus=plan.num_cpus, num_gpus=plan.num_gpus,
        fn_constructor_kwargs={"checkpoint": str(checkpoint), "out": str(out.resolve()),
                               "options": {**options, "gsd": gsd, "skip_invalid": skip_invalid, "batch_size": batch_size,
                                           "defects": defect_options},
                               "threads": plan.threads, "device": "cuda" if plan.num_gpus else "cpu"},
    )
    rows = _gather(ray, dataset, len(files), Progress.of(progress), f"predicting on Ray ({plan.actors} actors)", "images")
    records = [json.loads(row["record"]) for row in sorted(rows, key=lambda r: int(r["position"]))]
    errors = [r["error"] for r in records if r is not None and "error" in r]
    if errors:
        raise CrackalError(errors[0])
    return write_measurements([r for r in records if r is not None], out, threshold, gsd, inputs, options=defect_options,
                              files=files, heading=heading, segments=segments, chainage=chainage)


class PoolScorer:
    """A Ray Data callable class: loads the round's model(s) once and scores groups of pool
    images with ``score_group`` (each row: a group index and its image paths as JSON)."""

    def __init__(self, checkpoints: list[str], options: dict, threads: int, device: str) -> None:
        import torch

        from crackal.training.checkpoint import load_model

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
        return score_pool([], [None] * len(paths), heuristic, reduction, method, iterations, batch_size, seed=seed)  # type: ignore[list-item]
    ray = connect(address)
    _quiet_data(ray)
    plan = cluster_plan(ray, actors)
    groups = [{"index": g, "paths": json.dumps([str(p) for p in paths[start:start + batch_size]])}
              for g, start in enumerate(range(0, len(paths), batch_size))]
    options = {"heuristic": heuristic, "reduction": reduction, "method": method, "iterations": iterations, "seed": seed}
    dataset = ray.data.from_items(groups, override_num_blocks=max(1, min(len(groups), 4 * plan.actors))).map_batches(
        PoolScorer, batch_size=1, batch_format="numpy", compute=compute(ray, plan),
        num_cpus=plan.num_cpus, num_gpus=plan.num_gpus,
        fn_constructor_kwargs={"checkpoints": [str(c) for c in checkpoints], "options": options,
                               "threads": plan.threads, "device": "cuda" if plan.num_gpus else "cpu"},
    )
    rows = _gather(ray, dataset, len(groups), Progress.of(progress),
                   f"scoring pool on Ray ({len(paths)} images, {plan.actors} actors)", "batches")
    rows.sort(key=lambda r: int(r["index"]))
    return np.concatenate([np.asarray(json.loads(r["scores"]), np.float64) for r in rows])
