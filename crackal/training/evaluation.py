"""Scoring a model on a labelled dataset (validation, test, an active-learning held-out set)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from crackal.data.dataset import SegmentationDataset
from crackal.metrics.segmentation import SegmentationEvaluator
from crackal.models.predict import DEFAULT_TILE, predict_image
from crackal.progress import Progress


def evaluate_model(
    model: nn.Module,
    dataset: SegmentationDataset,
    class_names: Sequence[str],
    tolerances: Sequence[int] = (0,),
    tile_size: int = DEFAULT_TILE,
    tta: bool = False,
    loss_fn: nn.Module | None = None,
    fixed_threshold: float | None = None,
    progress: bool | Progress = False,
    predict_fn: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[dict, float | None]:
    """Every metric of ``SegmentationEvaluator`` and, with ``loss_fn``, the mean loss per image.

    ``predict_fn`` (image -> probabilities) replaces whole-image prediction, e.g. by detect-then-segment.
    """
    evaluator = SegmentationEvaluator(class_names, tolerances, fixed_threshold=fixed_threshold)
    losses = []
    for index in Progress.of(progress).bar(range(len(dataset)), desc="evaluating", unit="images"):
        image, mask = dataset.load(index)
        probs = predict_fn(image) if predict_fn else predict_image(model, image, tile_size=tile_size, tta=tta)
        evaluator.update(probs, mask)
        if loss_fn is not None:
            log_probs = torch.from_numpy(np.log(np.clip(probs, 1e-7, 1.0)))[None]  # valid softmax logits
            target = torch.from_numpy(mask.astype(np.int64))[None]
            losses.append(float(loss_fn(log_probs, target)))
    return evaluator.compute(), (float(np.mean(losses)) if losses else None)


def headline(result: dict, tolerance: int = 0) -> dict[str, float]:
    """ODS precision / recall / F1 / threshold at one tolerance, averaged over defect classes."""
    scores = [entry[f"tol{tolerance}"]["ods"] for entry in result["classes"].values()]
    return {key: float(np.mean([s[key] for s in scores])) for key in ("f1", "precision", "recall", "threshold")}


def darkness_baseline(dataset: SegmentationDataset, class_names: Sequence[str], tolerances: Sequence[int] = (0, 2, 5)) -> dict:
    """Scores of a naive detector (crack probability = local darkness), for comparison."""
    from scipy import ndimage

    evaluator = SegmentationEvaluator(class_names, tolerances)
    for index in range(len(dataset)):
        image, mask = dataset.load(index)
        grey = image.mean(axis=2)
        dark = np.clip((ndimage.median_filter(grey, 15) - grey) / 60.0, 0, 1)
        evaluator.update(np.stack([1 - dark, dark]), mask)
    return evaluator.compute()
