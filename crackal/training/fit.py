"""The epoch loop shared by every trainer: resume, validate, keep the best and the last
checkpoint, write ``metrics.json`` and the training curves, stop at the time limit.

A trainer supplies a *runner* that owns the model, its optimiser and its data (see
``EpochRunner``); ``fit`` runs it epoch after epoch. A run killed at any moment and started
again with ``resume`` ends exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from crackal.errors import CrackalError
from crackal.progress import Progress
from crackal.runs.checkpoint import atomic_save, atomic_write_json, read_checkpoint
from crackal.runs.config import SavedConfig
from crackal.training import distributed
from crackal.training.plots import plot_history


@dataclass
class TrainResult:
    """What a finished run left: its folder, its best epoch and the validation score that chose it.

    ``score_name`` names that score: ``val_f1`` for segmentation, ``val_map_50`` for detection;
    ``best_score`` is None when the run had no validation split (the last epoch is kept).
    """

    run_dir: Path
    best_checkpoint: Path
    best_epoch: int
    best_score: float | None
    score_name: str
    threshold: float
    history: list[dict]
    seconds: float


class EpochRunner(Protocol):
    """What ``fit`` needs from a trainer."""

    score_name: str  # the validation score that picks the best checkpoint
    protocol: str  # how the validation scores are measured (saved in metrics.json)
    has_validation: bool

    def train_epoch(self, epoch: int, seed: int, progress: Progress) -> dict:
        """Train one epoch (seeded); its entries of the history (``train_loss``, ``lr``, ...)."""

    def validate(self) -> dict:
        """Scores on the validation set, named ``val_*`` (``score_name`` among them)."""

    def best_model(self) -> nn.Module:
        """The model that is validated and saved as the best."""

    def checkpoint_extras(self) -> dict:
        """Entries saved in both checkpoints (e.g. class weights)."""

    def state_dict(self) -> dict:
        """What resuming needs (model, optimiser, scheduler, ...), saved in the last checkpoint."""

    def load_state_dict(self, state: dict) -> None:
        """Restore the state of a last checkpoint."""

    def metrics_extras(self) -> dict:
        """Extra entries of ``metrics.json`` (e.g. the balance log)."""

    def anneal_over(self, epochs: int) -> None:
        """End the learning-rate schedule after ``epochs`` epochs (fewer than configured when
        the time limit leaves fewer)."""

    def finish(self, run_dir: Path) -> None:
        """Add extra plots to ``run_dir`` after the last epoch."""


def resolve_device(name: str) -> torch.device:
    """``auto`` picks the GPU when there is one (TF32 matrix products allowed there)."""
    torch.backends.cuda.matmul.allow_tf32 = True
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CrackalError(f"device {name} asked for, but PyTorch sees no GPU; use device cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's random number generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def start_run(run_dir: Path, config) -> torch.device:
    """Make ``run_dir/checkpoints``, pick the device and threads, seed everything (under
    ``torchrun``: join the process group; each rank gets its own GPU)."""
    distributed.start(config.device)
    if distributed.is_main():
        (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    device = distributed.local_device(resolve_device(config.device))
    if config.threads:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    return device


class WarmupCosine:
    """LR multiplier: linear warm-up, then cosine decay to ``floor`` at ``total_steps`` (which
    ``fit`` shortens when a time limit leaves fewer epochs; kept in the scheduler's state).

    >>> factor = WarmupCosine(2, 10)
    >>> [round(factor(step), 2) for step in (0, 1, 2, 10)]
    [0.5, 1.0, 1.0, 0.01]
    """

    def __init__(self, warmup_steps: int, total_steps: int, floor: float = 0.01) -> None:
        self.warmup_steps, self.total_steps, self.floor = warmup_steps, total_steps, floor

    def __call__(self, step: int) -> float:
        """The multiplier at ``step``."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * progress))


def epochs_that_fit(time_limit_min: float, seconds: float, epochs_done: int, epochs: int) -> int:
    """How many epochs fit in the time limit at the pace so far (validations included), at least
    those done and at most ``epochs``: the learning rate anneals over that many.

    >>> epochs_that_fit(10, 120.0, 2, 40)  # 60 s an epoch: 10 of the 40 fit in 10 minutes
    10
    """
    return max(epochs_done, min(epochs, int(60 * time_limit_min * epochs_done / max(seconds, 1e-9))))


def _saved_best(state: dict) -> float | None:
    """The best validation score in a last checkpoint (also as older crackal versions wrote it)."""
    best = state.get("best_score", state.get("best_val_f1", state.get("best_val_map_50")))
    return None if best is None or best < 0 else best


def validations_since_best(history: list[dict], score_name: str, best_epoch: int) -> int:
    """How many validations after ``best_epoch`` did not beat it (what ``patience`` counts).

    >>> validations_since_best([{"epoch": 1, "val_f1": 0.5}, {"epoch": 2}, {"epoch": 3, "val_f1": 0.4}], "val_f1", 1)
    1
    """
    return sum(1 for record in history if record["epoch"] > best_epoch and score_name in record)


def fit(runner: EpochRunner, config: SavedConfig, run_dir: Path, resume: bool = False, progress: Progress | None = None) -> TrainResult:
    """Train ``runner`` for ``config.epochs`` epochs into ``run_dir`` (see the module docstring),
    or until ``config.patience`` validations in a row have not beaten the best one (checked
    from half the epochs on: before that a small validation set's noise would stop it).
    With ``config.time_limit_min`` the schedule is fitted to the time: after each epoch the
    number of epochs that fit at the pace so far is re-estimated and the learning rate anneals
    over that many, so a time-limited run ends annealed instead of cut at a high rate.
    A finished run's last checkpoint keeps the model and the history but not the optimiser
    (two thirds of the file): resuming it returns at once. A run cut by the clock keeps all.
    Under ``torchrun`` every rank trains and only rank 0 validates and writes."""
    progress = progress or Progress(enabled=False)
    main = distributed.is_main()
    last_path, best_path = run_dir / "checkpoints" / "last.pt", run_dir / "checkpoints" / "best.pt"
    history: list[dict] = []
    start_epoch, best, best_epoch, threshold, elapsed = 0, None, 0, 0.5, 0.0
    if resume and last_path.is_file():
        state = read_checkpoint(last_path)
        history, start_epoch, best_epoch = state["history"], state["epoch"], state["best_epoch"]
        best, threshold, elapsed = _saved_best(state), state["threshold"], state.get("seconds", 0.0)
        if state.get("finished"):
            return TrainResult(run_dir, best_path, best_epoch, best, runner.score_name, threshold, history, elapsed)
        runner.load_state_dict(state)
    if main:
        config.save(run_dir / "config.json")
    epochs = config.epochs  # type: ignore[attr-defined]
    time_limit = config.time_limit_min  # type: ignore[attr-defined]
    planned = history[-1].get("epochs_planned", epochs) if time_limit and history else epochs
    runner.anneal_over(planned)  # a resumed run goes on with the plan it had
    patience = getattr(config, "patience", None) if runner.has_validation else None
    started = time.perf_counter() - elapsed
    epochs_left = range(start_epoch, epochs)
    if not progress.detail:  # inside a larger job: one bar over the epochs instead of a line per epoch
        epochs_left = progress.bar(epochs_left, desc=f"training {run_dir.name}", unit="epochs")  # type: ignore[assignment]
    for epoch in epochs_left:
        seed = config.seed * 100_003 + epoch  # type: ignore[attr-defined]
        torch.manual_seed(seed)  # dropout: every epoch starts from a known state, so resume is exact
        record = {"epoch": epoch + 1, **runner.train_epoch(epoch, seed, progress)}
        seconds = time.perf_counter() - started
        out_of_time = distributed.from_main(bool(time_limit) and seconds > 60 * time_limit)
        if time_limit and not out_of_time:
            fits = distributed.from_main(epochs_that_fit(time_limit, seconds, epoch + 1, epochs))
            if fits < planned == epochs:
                progress.line(f"{fits} of the {epochs} epochs fit in {time_limit} min at this pace: the learning rate "
                              f"now anneals over {fits} (re-estimated after each epoch)")
            planned = record["epochs_planned"] = fits
            runner.anneal_over(planned)
        last = out_of_time or epoch + 1 >= planned
        if main and runner.has_validation and ((epoch + 1) % config.val_interval == 0 or last):  # type: ignore[attr-defined]
            record.update(runner.validate())
        record["seconds"] = round(time.perf_counter() - started, 2)
        history.append(record)
        score = record.get(runner.score_name)
        improved = main and ((best is None or score > best) if score is not None else not runner.has_validation)
        if improved:
            best, best_epoch, threshold = score, epoch + 1, record.get("val_threshold", 0.5)
        stale = distributed.from_main(
            main and patience is not None and epoch + 1 >= planned // 2  # never in the first half: the rate is still high
            and validations_since_best(history, runner.score_name, best_epoch) >= patience)
        finished = stale or (last and not out_of_time)
        if main:
            checkpoint = {"model": runner.best_model().state_dict(), "config": config.to_dict(), "epoch": epoch + 1,
                          **runner.checkpoint_extras()}
            if improved:
                atomic_save({**checkpoint, "threshold": threshold, "val": record}, best_path)
            resume_state = {"finished": True} if finished else runner.state_dict()
            atomic_save({**checkpoint, **resume_state, "history": history, "best_score": best, "best_epoch": best_epoch,
                         "threshold": threshold, "seconds": record["seconds"]}, last_path)
            metrics = {"protocol": runner.protocol, "history": history, "best_epoch": best_epoch,
                       f"best_{runner.score_name}": best, "threshold": threshold, **runner.metrics_extras()}
            atomic_write_json(metrics, run_dir / "metrics.json")
            shown = ", ".join(f"{k} {v:.4f}" for k, v in record.items() if k.startswith("val_") or k == "train_loss")
            crops = " ".join(f"{k[6:]} {v:.2f}" for k, v in record.items() if k.startswith("crops_"))
            shown += f"; crops holding {crops}" if crops else ""
            progress.line(f"epoch {epoch + 1}/{epochs}: {shown} ({record['seconds']:.0f}s)", detail=True)
        if stale:
            progress.line(f"no better validation {runner.score_name} in {patience} validations: stopped after epoch {epoch + 1}")
        elif out_of_time:
            progress.line(f"time limit of {time_limit} min reached after epoch {epoch + 1}")
        if stale or last:
            break
    if main:
        plot_history(history, run_dir / "training_curves.png")
        runner.finish(run_dir)
    return TrainResult(run_dir, best_path, best_epoch, best, runner.score_name, threshold, history,
                       history[-1]["seconds"] if history else 0.0)
