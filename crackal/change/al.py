"""Active learning for change detection on tiles, with the ground truth as labeller.

The pool is a ``TileSet`` whose tiles are labelled changed / unchanged by the 1 % / 3 % rule
(ignored tiles are left out). It starts from a balanced set (``initial_per_class`` changed and
as many unchanged tiles); every round trains the Siamese U-Net (``ensemble_size`` models from
different seeds for ``method="ensemble"``), scores it by pixel ROC-AUC on a balanced test set,
scores every unlabelled tile by the ``variance`` or ``entropy`` of its stochastic predictions
averaged over its pixels (ensemble members, or MC-BatchNorm passes), and labels the
``query_size`` highest (or a random batch for ``random``). The share of changed tiles in the
labelled set is recorded every round.

A run writes ``state.json`` after every round (labelled tiles and history, atomically):
started again, it continues after its last finished round. Trained models are cached by
(labelled tiles, recipe, seed), so runs that share a round (every strategy's first round
of a seed) train it once.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch

from crackal.acquisition.score import score_pool
from crackal.acquisition.select import select_top
from crackal.change.train import ChangeTrainConfig, build_change_model, predict_change, tensors, train_change_model
from crackal.data.bitemporal import CHANGED, UNCHANGED, TileSet
from crackal.errors import CrackalError, check_options, choose
from crackal.metrics.change import PROTOCOL, change_scores
from crackal.runs.checkpoint import atomic_save, atomic_write_json
from crackal.runs.config import SavedConfig

Strategy = Literal["variance", "entropy", "random"]
Method = Literal["ensemble", "mc_batchnorm"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
METHODS: tuple[str, ...] = get_args(Method)
REFERENCE_BATCH = 16  # labelled tiles per MC-BatchNorm pass


@dataclass
class ChangeALConfig(SavedConfig):
    """One change-detection AL run. ``ensemble_size`` (M) and ``iterations`` (MC-BatchNorm
    passes) default to the published 5; ``random`` trains one model and ignores ``method``."""

    strategy: str = "variance"
    method: str = "ensemble"
    ensemble_size: int = 5
    iterations: int = 5
    initial_per_class: int = 25
    query_size: int = 25
    rounds: int = 8
    seed: int = 0
    train: ChangeTrainConfig = field(default_factory=ChangeTrainConfig)

    def __post_init__(self) -> None:
        if isinstance(self.train, dict):
            self.train = ChangeTrainConfig(**self.train)
        choose(STRATEGIES, self.strategy, "strategy")
        choose(METHODS, self.method, "method")
        check_options([
            (self.ensemble_size >= 2, "ensemble_size", f"must be at least 2, got {self.ensemble_size}"),
            (self.iterations >= 2, "iterations", f"must be at least 2, got {self.iterations}"),
            (self.initial_per_class >= 1, "initial_per_class", f"(tiles of each class) must be at least 1, got {self.initial_per_class}"),
            (self.query_size >= 1, "query_size", f"must be at least 1, got {self.query_size}"),
            (self.rounds >= 1, "rounds", f"must be at least 1, got {self.rounds}"),
        ])

    @property
    def name(self) -> str:
        """``random``, or method and heuristic: ``ensemble-variance``, ``mc_batchnorm-entropy``."""
        return "random" if self.strategy == "random" else f"{self.method}-{self.strategy}"

    @property
    def members(self) -> int:
        """Models trained per round: ``ensemble_size`` for an ensemble strategy, otherwise 1."""
        return self.ensemble_size if self.strategy != "random" and self.method == "ensemble" else 1


def parse_run(spec: str) -> dict:
    """``"variance:ensemble"``, ``"entropy:mc_batchnorm"``, ``"random"`` -> config fields."""
    strategy, _, method = spec.partition(":")
    return {"strategy": strategy, **({"method": method} if method else {})}


def balanced_start(labels: np.ndarray, per_class: int, seed: int) -> list[int]:
    """``per_class`` changed and ``per_class`` unchanged tile indices, drawn with ``seed``."""
    rng = np.random.default_rng(seed)
    picks = []
    for label, what in ((CHANGED, "changed"), (UNCHANGED, "unchanged")):
        candidates = np.flatnonzero(labels == label)
        if len(candidates) < per_class:
            raise CrackalError(
                f"a balanced start needs {per_class} {what} tiles but the pool has {len(candidates)}; "
                "lower --initial or add pairs"
            )
        picks += rng.choice(candidates, per_class, replace=False).tolist()
    return sorted(int(i) for i in picks)


class ModelCache:
    """Trained models on disk, keyed by (labelled tiles, training recipe, seed)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def get(self, tiles: TileSet, indices: list[int], config: ChangeTrainConfig, seed: int) -> torch.nn.Module:
        """The model trained on ``tiles.subset(indices)`` with ``config`` and ``seed``: loaded when
        cached, otherwise trained and saved; in eval mode."""
        key = hashlib.sha1(json.dumps([sorted(indices), config.to_dict(), seed]).encode()).hexdigest()[:16]
        path = self.folder / f"{key}.pt"
        if path.is_file():
            model = build_change_model(config)
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            return model.eval()
        model = train_change_model(tiles.subset(indices), config, seed)
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_save(model.state_dict(), path)
        return model


def _reference_batches(tiles: TileSet, seed: int):
    """Random labelled tiles for MC-BatchNorm: a fresh batch every call, seeded."""
    rng = np.random.default_rng(seed)

    def draw() -> torch.Tensor:
        return tensors(tiles.images[rng.integers(len(tiles), size=min(REFERENCE_BATCH, max(2, len(tiles))))])

    return draw


def train_seed(config: ChangeALConfig, round_: int, member: int = 0) -> int:
    """Training seed of a round's model (member of an ensemble): the same for every strategy."""
    return config.seed * 100_000 + round_ * 100 + member


def score_unlabelled(models: list[torch.nn.Module], pool: TileSet, unlabelled: np.ndarray, labelled: TileSet,
                     config: ChangeALConfig, seed: int) -> np.ndarray:
    """One acquisition score per unlabelled tile: its pixels' variance or entropy, averaged."""
    method: Method = "ensemble" if config.method == "ensemble" else "mc_batchnorm"
    return score_pool(
        models if method == "ensemble" else models[0], pool.images[unlabelled], config.strategy, "mean", method,
        config.iterations, batch_size=64, reference_batches=_reference_batches(labelled, seed), seed=seed,
    )


def _state(path: Path, config: ChangeALConfig, pool: TileSet) -> dict:
    if path.is_file():
        return json.loads(path.read_text())
    return {"config": config.to_dict(), "name": config.name, "protocol": PROTOCOL, "pool_size": len(pool),
            "pool_changed_share": pool.changed_share(),
            "labelled": balanced_start(pool.labels, config.initial_per_class, config.seed), "rounds": []}


def run_change_al(pool: TileSet, test: TileSet, config: ChangeALConfig, out: str | Path,
                  cache: ModelCache | None = None, progress=None) -> dict:
    """Run (or continue) one simulation; returns its state (see ``state.json``)."""
    out = Path(out)
    pool = pool.labelled()
    cache = cache or ModelCache(out / "models")
    state = _state(out / "state.json", config, pool)
    while len(state["rounds"]) < config.rounds:
        started, round_ = time.perf_counter(), len(state["rounds"]) + 1
        labelled_idx = state["labelled"]
        models = [cache.get(pool, labelled_idx, config.train, train_seed(config, round_, m)) for m in range(config.members)]
        scores = change_scores(predict_change(models, test.images), test.masks)
        labels = pool.labels[labelled_idx]
        record: dict[str, float | None] = {"round": round_, "labelled": len(labelled_idx), "changed_tiles": int((labels == CHANGED).sum()),
                  "changed_share": float((labels == CHANGED).mean()), **scores}
        selected: list[int] = []
        unlabelled = np.setdiff1d(np.arange(len(pool)), labelled_idx)
        if round_ < config.rounds and len(unlabelled):
            seed = train_seed(config, round_)
            tile_scores = score_unlabelled(models, pool, unlabelled, pool.subset(labelled_idx), config, seed)
            selected = [int(unlabelled[i]) for i in select_top(tile_scores, config.query_size)]
            record["pool_uncertainty"] = None if config.strategy == "random" else float(np.mean(tile_scores))
        record["selected_changed"] = int((pool.labels[selected] == CHANGED).sum()) if selected else 0
        record["seconds"] = round(time.perf_counter() - started, 1)
        state["rounds"].append(record)
        state["labelled"] = sorted(labelled_idx + selected)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(state, out / "state.json")
        if progress:
            progress(f"{config.name} seed {config.seed} round {round_}: {record['labelled']} tiles "
                     f"({record['changed_share']:.0%} changed), AUC {record['auc']:.4f} ({record['seconds']:.0f}s)")
        if not selected:
            break
    return state


def reference_scores(pool: TileSet, test: TileSet, train: ChangeTrainConfig, seed: int, cache: ModelCache) -> dict:
    """Test scores of a model trained on every labelled tile of the pool (same recipe)."""
    pool = pool.labelled()
    model = cache.get(pool, list(range(len(pool))), train, seed * 100_000)
    return {"tiles": len(pool), **change_scores(predict_change(model, test.images), test.masks)}
