"""The active-learning loop: create a project, then round after round train on the labelled
images, evaluate on the fixed held-out set, score the pool, select the next batch, and get
it labelled (by the ground-truth oracle in a simulation, by a person otherwise).

Each phase of a round is recorded before the next starts (``rounds.state``: training ->
scoring -> done), and training resumes from its last checkpoint, so ``run_round`` after a
kill continues where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from crackal.acquisition.score import score_pool
from crackal.acquisition.select import kcenter_greedy, select_random, select_stochastic, select_top
from crackal.active import detection_round
from crackal.active.config import ALConfig
from crackal.active.labels import label_from_ground_truth
from crackal.active.stopping import stop_reason
from crackal.active.store import ImageRecord, ProjectStore
from crackal.data.dataset import SegmentationDataset
from crackal.data.io import read_image
from crackal.data.layout import Pair
from crackal.data.transforms import to_tensor, train_transform
from crackal.errors import CrackalError
from crackal.losses import SegmentationLoss
from crackal.models import create_model
from crackal.training.checkpoint import load_model
from crackal.training.config import TrainConfig
from crackal.training.evaluation import evaluate_model, headline
from crackal.training.trainer import train


class LazyImages:
    """The images of some records, read one at a time when iterated (the pool can be large)."""

    def __init__(self, records: list[ImageRecord]) -> None:
        self.records = records

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        for record in self.records:
            yield read_image(record.path)


def create_project(
    root: str | Path,
    pool: list[tuple[str, Path, Path | None]],
    heldout: list[tuple[str, Path, Path]],
    config: ALConfig,
) -> ProjectStore:
    """A new project with its pool ``(name, image, truth mask or None)`` and held-out set
    ``(name, image, mask)``, and the cold-start batch queued for labelling."""
    if not pool:
        raise CrackalError("the pool is empty: give a folder with at least one image")
    if not heldout:
        raise CrackalError("a held-out set with masks is needed to measure each round; pass --heldout")
    if config.simulation and any(truth is None for _, _, truth in pool):
        missing = next(name for name, _, truth in pool if truth is None)
        raise CrackalError(f"simulation needs a ground-truth mask for every pool image; {missing} has none")
    store = ProjectStore(root, create=True)
    store.update_settings(config.to_dict())
    store.add_images([(n, p, "pool", t) for n, p, t in pool] + [(n, p, "heldout", m) for n, p, m in heldout])
    candidates = store.unlabelled()
    k = min(config.initial, len(candidates))
    if config.cold_start == "coreset":
        model = create_model(config.arch, len(config.class_names), base_channels=config.base_channels, depth=config.depth,
                             downscale=config.downscale)
        chosen = kcenter_greedy(pooled_features(model, LazyImages(candidates)), k, config.seed)
    else:
        chosen = select_random(len(candidates), k, config.seed)
    store.enqueue(0, [candidates[i].id for i in chosen], [None] * len(chosen))
    return store


@torch.inference_mode()
def pooled_features(model, images) -> np.ndarray:
    """Global average- and max-pooled trunk features, one row per image (for coreset)."""
    model.eval()
    rows = []
    for image in images:
        x, _ = model.pad(to_tensor(image)[None])
        f = model.features(x)
        rows.append(torch.cat([f.mean((2, 3)), f.amax((2, 3))], 1)[0].numpy())
    return np.stack(rows)


def open_project(root: str | Path) -> tuple[ProjectStore, ALConfig]:
    store = ProjectStore(root)
    return store, ALConfig.from_dict(store.settings())


def _pairs(records: list[ImageRecord], labels: bool) -> list[Pair]:
    return [Pair(r.path, r.label_path if labels else r.truth_path) for r in records]


def _train_config(config: ALConfig, round_: int) -> TrainConfig:
    return TrainConfig(
        arch=config.arch, base_channels=config.base_channels, depth=config.depth, dropout=config.dropout,
        class_names=config.class_names, epochs=config.epochs, samples_per_epoch=config.samples_per_epoch,
        batch_size=config.batch_size, crop_size=config.crop_size, downscale=config.downscale, lr=config.lr, loss=config.loss,
        class_weighting=config.class_weighting, seed=config.seed * 1000 + round_, warmup_epochs=0.5,
    )


@dataclass
class RoundResult:
    round: int
    labelled: int
    metrics: dict
    selected: list[str]
    pool_uncertainty: float | None


def _reference_batches(labelled: SegmentationDataset, crop: int, seed: int, size: int = 4):
    """Random augmented crops of labelled images, for MC-BatchNorm."""
    rng = np.random.default_rng(seed)
    transform = train_transform(crop)
    transform.set_random_seed(seed)

    def draw() -> torch.Tensor:
        picks = rng.integers(len(labelled), size=size)
        return torch.stack([to_tensor(transform(image=labelled.load(int(i))[0])["image"]) for i in picks])

    return draw


def _label_queue(store: ProjectStore, config: ALConfig) -> None:
    """In a simulation the ground truth labels the queue; a person must have done it otherwise."""
    if not store.queue():
        return
    if not config.simulation:
        raise CrackalError(
            f"{len(store.queue())} images wait for labels: 'crackal al export-queue', label them, then 'crackal al import'"
        )
    label_from_ground_truth(store, len(config.class_names))


def _train_and_evaluate(store: ProjectStore, config: ALConfig, round_: int, train_set, progress: bool) -> None:
    """Train the round's model(s) (resuming a killed run), score the held-out set, record both."""
    tcfg, run_dir = _train_config(config, round_), store.root / "rounds" / f"{round_:03d}"
    if config.task == "detection":
        checkpoint, metrics = detection_round.train_and_evaluate(run_dir, config, round_, store.labelled(), store.heldout(), progress)
        store.update_round(round_, state="scoring", checkpoint=str(checkpoint), metrics=metrics)
        return
    result = train(train_set, None, tcfg, run_dir, resume=True, progress=progress)
    if config.method == "ensemble":
        for member in range(1, config.ensemble_size):
            member_config = TrainConfig.from_dict({**tcfg.to_dict(), "seed": tcfg.seed + 7919 * member})
            train(train_set, None, member_config, run_dir / f"member{member}", resume=True, progress=progress)
    model, ckpt = load_model(result.best_checkpoint)
    heldout = SegmentationDataset(_pairs(store.heldout(), labels=False), len(config.class_names))
    loss_fn = SegmentationLoss(tcfg.loss, torch.tensor(ckpt["class_weights"]))
    scores, loss = evaluate_model(model, heldout, config.class_names, (0, 2), tcfg.tile_size, loss_fn=loss_fn)
    metrics = {"strict": headline(scores, 0), "tol2": headline(scores, 2), "loss": loss,
               "auc": float(np.mean([c["auc"] for c in scores["classes"].values()]))}
    store.update_round(round_, state="scoring", checkpoint=str(result.best_checkpoint),
                       metrics=metrics, class_weights=ckpt["class_weights"])


def _score_and_select(store: ProjectStore, config: ALConfig, round_: int, train_set, labelled: int) -> tuple[list[int], float | None]:
    """Score the pool with the round's model(s), queue the next batch, close the round."""
    tcfg, run_dir = _train_config(config, round_), store.root / "rounds" / f"{round_:03d}"
    model = None if config.task == "detection" else load_model(store.current_round()["checkpoint"])[0]
    if config.method == "ensemble" and model is not None:
        model = [model] + [load_model(run_dir / f"member{m}")[0] for m in range(1, config.ensemble_size)]
    pool = store.unlabelled()
    selected, selected_scores, scores_by_id, uncertainty = [], [], {}, None
    k = min(config.batch, (config.budget - labelled) if config.budget else config.batch)
    if pool and config.task == "detection":
        scores = detection_round.score_pool(Path(store.current_round()["checkpoint"]), run_dir, config, pool, tcfg.seed)
    elif pool:
        references = _reference_batches(train_set, tcfg.crop_size, tcfg.seed) if config.method == "mc_batchnorm" else None
        scores = score_pool(model, LazyImages(pool), config.strategy, config.reduction, config.method,
                            config.iterations, reference_batches=references, seed=tcfg.seed)
    if pool:
        scores_by_id = {r.id: float(s) for r, s in zip(pool, scores)}
        uncertainty = None if config.strategy == "random" else float(np.mean(scores))
        if k > 0:
            stochastic = config.selection == "stochastic" and config.strategy != "random"
            chosen = select_stochastic(scores, k, config.temperature, tcfg.seed) if stochastic else select_top(scores, k)
            selected = [pool[i].id for i in chosen]
            selected_scores = [float(scores[i]) for i in chosen]
    store.finish_round(round_, scores_by_id, selected, selected_scores, uncertainty)
    names = {r.id: r.name for r in pool}
    return [names[i] for i in selected], uncertainty


def run_round(root: str | Path, progress: bool = False) -> RoundResult:
    """One round, or the rest of an interrupted one: label the queue (simulation), train,
    evaluate on the held-out set, score the pool, queue the next batch."""
    store, config = open_project(root)
    try:
        _label_queue(store, config)
        last = store.current_round()
        round_ = last["round"] if last and last["state"] != "done" else (last["round"] + 1 if last else 1)
        labelled = store.labelled()
        if not labelled:
            raise CrackalError("no labelled image yet; label the queue first ('crackal al export-queue' / 'import')")
        store.start_round(round_, len(labelled))
        train_set = SegmentationDataset(_pairs(labelled, labels=True), len(config.class_names))
        if store.current_round()["state"] == "training":
            _train_and_evaluate(store, config, round_, train_set, progress)
        selected, uncertainty = _score_and_select(store, config, round_, train_set, len(labelled))
        return RoundResult(round_, len(labelled), store.current_round()["metrics"], selected, uncertainty)
    finally:
        store.close()


def run_loop(root: str | Path, rounds: int | None = None, progress: bool = False, on_round=None) -> str:
    """Run rounds until a stopping criterion, or until the project has ``rounds`` finished
    rounds in total (so a killed run started again does only what is left); returns why it stopped."""
    while True:
        store, config = open_project(root)
        try:
            finished = [r for r in store.rounds() if r["state"] == "done"]
            reason = stop_reason(store.rounds(), config, len(store.labelled()) + len(store.queue()), len(store.unlabelled()))
        finally:
            store.close()
        if reason:
            return reason
        if rounds is not None and len(finished) >= rounds:
            return f"{rounds} rounds done"
        result = run_round(root, progress)
        if on_round:
            on_round(result)
