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

from crackal.acquisition.cost import cost_aware_scores
from crackal.acquisition.diversity import select_diverse
from crackal.acquisition.select import select_stochastic, select_top
from crackal.active.config import ALConfig
from crackal.active.cost_model import project_cost_model
from crackal.active.labels import label_from_ground_truth
from crackal.active.lock import project_lock
from crackal.active.stop_set import stop_set_kappa
from crackal.active.stopping import stop_reason
from crackal.active.store import ProjectStore, open_project
from crackal.active.tasks import TASKS
from crackal.errors import CrackalError
from crackal.progress import Progress


@dataclass
class RoundResult:
    """What a round did: its number, how many labelled images it trained on, its held-out metrics,
    the names queued for labelling and the pool's mean acquisition score (None for ``random``)."""

    round: int
    labelled: int
    metrics: dict
    selected: list[str]
    pool_uncertainty: float | None


def _label_queue(store: ProjectStore, config: ALConfig) -> None:
    """In a simulation the ground truth labels the queue; a person must have done it otherwise."""
    if not store.queue():
        return
    if not config.simulation:
        raise CrackalError(
            f"{len(store.queue())} images wait for labels: 'crackal al export-queue', label them, then 'crackal al import'"
        )
    label_from_ground_truth(store, len(config.class_names))


def _run_dir(store: ProjectStore, round_: int) -> Path:
    return store.root / "rounds" / f"{round_:03d}"


def _started_round(store: ProjectStore) -> dict:
    """The last round, once ``start_round`` has recorded one."""
    current = store.current_round()
    assert current is not None, "a round has been started"
    return current


def _train_and_evaluate(store: ProjectStore, config: ALConfig, round_: int, progress: Progress) -> None:
    """Train the round's model(s) (resuming a killed run), score the held-out set, predict the
    stop set (``crackal.active.stop_set``), record them."""
    run_dir = _run_dir(store, round_)
    checkpoint, metrics, extras = TASKS[config.task].train_and_evaluate(store, config, round_, run_dir, progress)
    kappa = stop_set_kappa(store, config, round_, run_dir, checkpoint)
    if kappa is not None:
        metrics["stop_kappa"] = kappa
    store.update_round(round_, state="scoring", checkpoint=str(checkpoint), metrics=metrics, **extras)


def _score_and_select(store: ProjectStore, config: ALConfig, round_: int, labelled: int, progress: Progress,
                      ray: str | None = None) -> tuple[list[str], float | None]:
    """Score the pool with the round's model(s), queue the next batch, close the round."""
    pool = store.unlabelled()
    selected, selected_scores, scores_by_id, uncertainty = [], [], {}, None
    k = min(config.query_size, (config.budget - labelled) if config.budget else config.query_size)
    if pool:
        checkpoint = Path(_started_round(store)["checkpoint"])
        features: list[np.ndarray] | None = [] if config.cost_aware else None
        scores = TASKS[config.task].score_pool(store, config, round_, _run_dir(store, round_), checkpoint, pool, progress,
                                               ray=ray, features=features)
        scores_by_id = {r.id: float(s) for r, s in zip(pool, scores)}
        uncertainty = None if config.strategy == "random" else float(np.mean(scores))
        acquisition, seconds = (scores, None) if features is None else _cost_aware(store, config, round_, scores,
                                                                                   np.array(features))
        if k > 0:
            seed = config.round_config(round_).seed
            chosen = _select(acquisition, k, config, seed,
                             lambda idx: TASKS[config.task].embeddings(checkpoint, [pool[i] for i in idx]))
            selected = [pool[i].id for i in chosen]
            selected_scores = [float(scores[i]) for i in chosen]
            if seconds is not None:
                _record_cost(store, round_, selected_seconds=[round(float(seconds[i]), 2) for i in chosen])
    store.finish_round(round_, scores_by_id, selected, selected_scores, uncertainty)
    names = {r.id: r.name for r in pool}
    return [names[i] for i in selected], uncertainty


def _cost_aware(store: ProjectStore, config: ALConfig, round_: int, scores: np.ndarray,
                features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``cost_aware``: each score divided by the image's predicted labelling seconds (the project's
    cost model on the features of its predicted mask), and those seconds; the model is recorded
    in the round's metrics (``cost_model``)."""
    model = project_cost_model(store, config)
    seconds = model.predict(features)
    _record_cost(store, round_, **model.as_dict(), pool_median_seconds=round(float(np.median(seconds)), 2))
    return cost_aware_scores(scores, seconds), seconds


def _record_cost(store: ProjectStore, round_: int, **values) -> None:
    """Add ``values`` to the round's ``metrics["cost_model"]``."""
    metrics = (store.current_round() or {}).get("metrics") or {}
    metrics["cost_model"] = {**metrics.get("cost_model", {}), **values}
    store.update_round(round_, metrics=metrics)


def _select(scores: np.ndarray, k: int, config: ALConfig, seed: int, embed) -> np.ndarray:
    """The indices of the next batch by ``config.selection`` (random sampling takes the top of its random scores)."""
    if config.strategy == "random" or config.selection == "top":
        return select_top(scores, k)
    if config.selection == "stochastic":
        return select_stochastic(scores, k, config.temperature, seed)
    return select_diverse(scores, embed, k, config.diversity_candidates, seed)


def run_round(root: str | Path, progress: bool | Progress = False, ray: str | None = None) -> RoundResult:
    """One round, or the rest of an interrupted one: label the queue (simulation), train,
    evaluate on the held-out set, score the pool (on Ray at ``ray``, an address or ``local``,
    when given), queue the next batch."""
    progress = Progress.of(progress)
    with project_lock(root, "crackal al step"):
        store, config = open_project(root)
        with store:
            return _run_round(store, config, progress, ray)


def _run_round(store: ProjectStore, config: ALConfig, progress: Progress, ray: str | None = None) -> RoundResult:
    _label_queue(store, config)
    last = store.current_round()
    round_ = last["round"] if last and last["state"] != "done" else (last["round"] + 1 if last else 1)
    labelled = store.labelled()
    if not labelled:
        raise CrackalError("no labelled image yet; label the queue first ('crackal al export-queue' / 'import')")
    store.start_round(round_, len(labelled))
    if _started_round(store)["state"] == "training":
        _train_and_evaluate(store, config, round_, progress)
    selected, uncertainty = _score_and_select(store, config, round_, len(labelled), progress, ray)
    return RoundResult(round_, len(labelled), _started_round(store)["metrics"], selected, uncertainty)


def run_loop(root: str | Path, rounds: int | None = None, progress: bool | Progress = False, on_round=None) -> str:
    """Run rounds until a stopping criterion, or until the project has ``rounds`` finished
    rounds in total (so a killed run started again does only what is left); returns why it stopped."""
    with project_lock(root, "crackal al run"):
        return _run_loop(root, rounds, progress, on_round)


def _run_loop(root: str | Path, rounds: int | None, progress: bool | Progress, on_round) -> str:
    while True:
        store, config = open_project(root)
        with store:
            finished = [r for r in store.rounds() if r["state"] == "done"]
            reason = stop_reason(store.rounds(), config, len(store.labelled()) + len(store.queue()), len(store.unlabelled()))
        if reason:
            return reason
        if rounds is not None and len(finished) >= rounds:
            return f"{rounds} round{'' if rounds == 1 else 's'} done"
        result = run_round(root, progress)
        if on_round:
            on_round(result)
