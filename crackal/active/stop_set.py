"""The stabilising-predictions stop rule: a fixed, seeded sample of the unlabelled pool (the
stop set) is predicted by every round's model; when Cohen's kappa between the masks of
consecutive rounds stays at or above ``stop_kappa`` for ``stop_rounds`` rounds, the model has
stopped changing where it has not been taught, and more labels are unlikely to pay.
The rule advises (``crackal al status``, the report); it does not stop the loop."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from crackal.active.config import ALConfig
from crackal.active.store import ImageRecord, ProjectStore

STOP_MASKS = "stop_set.npz"


def stop_set(store: ProjectStore, config: ALConfig) -> list[ImageRecord]:
    """The project's stop set, chosen once (seeded) from the unlabelled pool and then kept
    (empty for detection projects or ``stop_set_size`` 0)."""
    if config.task != "segmentation" or not config.stop_set_size:
        return []
    chosen = store.stop_set()
    if not chosen:
        pool = store.unlabelled()
        picks = np.random.default_rng(config.seed).choice(len(pool), min(config.stop_set_size, len(pool)), replace=False)
        store.set_stop_set(sorted(pool[int(i)].id for i in picks))
        chosen = store.stop_set()
    return chosen


def stop_set_kappa(store: ProjectStore, config: ALConfig, round_: int, run_dir: Path, checkpoint: Path) -> float | None:
    """Predict the stop set with the round's model, save the masks (``run_dir/stop_set.npz``) and
    return Cohen's kappa of all their pixels against the previous round's (None in round 1
    or without a stop set)."""
    from crackal.active.project import LazyImages
    from crackal.active.segmentation_round import SegmentationRounds
    from crackal.metrics.segmentation import cohen_kappa

    records = stop_set(store, config)
    if not records:
        return None
    predict = SegmentationRounds().predictor(checkpoint)
    masks = {r.name: predict(image) for r, image in zip(records, LazyImages(records))}
    partial = run_dir / "stop_set.partial.npz"
    np.savez_compressed(partial, allow_pickle=False, **masks)  # class masks: integer arrays, nothing to pickle
    os.replace(partial, run_dir / STOP_MASKS)
    previous = run_dir.parent / f"{round_ - 1:03d}" / STOP_MASKS
    if not previous.is_file():
        return None
    with np.load(previous) as before:
        names = [n for n in masks if n in before.files]
        if not names:
            return None
        return float(cohen_kappa(np.concatenate([before[n].ravel() for n in names]),
                                 np.concatenate([masks[n].ravel() for n in names]), len(config.class_names)))


def first_stable(kappas: list[float | None], threshold: float, rounds: int) -> int | None:
    """The index of the first round that ends ``rounds`` rounds in a row with kappa >= ``threshold``.

    >>> first_stable([None, 0.95, 0.995, 0.992, 0.999], 0.99, 2)
    3
    """
    streak = 0
    for index, kappa in enumerate(kappas):
        streak = streak + 1 if kappa is not None and kappa >= threshold else 0
        if streak >= rounds:
            return index
    return None


def stop_advice(rounds: list[dict], config: ALConfig) -> str | None:
    """Advice to stop labelling once the stop-set kappa of the last ``stop_rounds`` finished
    rounds is at or above ``stop_kappa``; None before that."""
    kappas = [r["metrics"].get("stop_kappa") for r in rounds if r["state"] == "done" and r.get("metrics")]
    recent = kappas[-config.stop_rounds:]
    if first_stable(recent, config.stop_kappa, config.stop_rounds) is None:
        return None
    shown = ", ".join(f"{k:.4f}" for k in recent)
    return (f"stop: predictions on the stop set have stabilised (kappa between rounds {shown} >= {config.stop_kappa} "
            f"for {config.stop_rounds} rounds)")
