"""The precision-recall flow (PRF) of Balanced Learning: keep crack precision and recall
flowing toward each other during training.

At a fixed interval the trainer measures precision ``P`` and recall ``R`` of the defect
classes on a monitoring subset and calls :meth:`PRFBalancer.update`. The adaptive parameter
``PRF = (P - R) / (P + R)`` gives the direction (``P > R``: the model misses cracks, so push
toward recall) and the strength of two adjustments:

* sample level: the share of training crops that contain defect pixels,
  ``share += share_gain * PRF``;
* feature level: a defect weight scale, ``scale *= exp(weight_gain * PRF)``, that multiplies
  the defect-class weights of cross-entropy and focal loss and, in the Dice term, the cost
  of a missed defect pixel against a false alarm (Tversky; ``scale = 1`` is plain Dice).

Both stay within their bounds, so the flow settles in a dynamic balance instead of
oscillating between all-background and all-crack predictions.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from crackal.data.dataset import IGNORE_INDEX, SegmentationDataset


def prf_parameter(precision: float, recall: float) -> float:
    """``(P - R) / (P + R)`` in [-1, 1]; 0 when both are 0 (nothing to steer by)."""
    total = precision + recall
    return 0.0 if total <= 0 else (precision - recall) / total


@dataclass
class PRFBalancer:
    """State of the precision-recall flow: the positive-crop share and the defect weight scale.

    >>> balancer = PRFBalancer()
    >>> entry = balancer.update(precision=0.9, recall=0.5, step=100)
    >>> balancer.positive_share > 0.5 and balancer.weight_scale > 1
    True
    """

    positive_share: float = 0.5
    weight_scale: float = 1.0
    share_gain: float = 0.2
    weight_gain: float = 1.0
    share_bounds: tuple[float, float] = (0.05, 0.95)
    scale_bounds: tuple[float, float] = (1 / 64, 64.0)
    log: list[dict] = field(default_factory=list)

    def update(self, precision: float, recall: float, step: int = 0) -> dict:
        """Move the share and the weight scale along the flow; returns the logged entry."""
        prf = prf_parameter(precision, recall)
        low, high = self.share_bounds
        self.positive_share = float(np.clip(self.positive_share + self.share_gain * prf, low, high))
        low, high = self.scale_bounds
        self.weight_scale = float(np.clip(self.weight_scale * math.exp(self.weight_gain * prf), low, high))
        entry = {
            "step": step,
            "precision": precision,
            "recall": recall,
            "prf": prf,
            "positive_share": self.positive_share,
            "weight_scale": self.weight_scale,
        }
        self.log.append(entry)
        return entry

    def scaled_weights(self, base_weights):
        """The loss weights with every defect class (index >= 1) multiplied by the scale."""
        weights = base_weights.clone()
        weights[1:] *= self.weight_scale
        return weights

    def apply(self, loss_fn, sampler, base_weights) -> None:
        """Hand the current state to training: the crop sampler's share and the loss's defect weights."""
        sampler.positive_share = self.positive_share
        loss_fn.set_class_weights(self.scaled_weights(base_weights))
        loss_fn.recall_weight = self.weight_scale

    def state_dict(self) -> dict:
        """The flow's state and log, for resuming."""
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        """Restore a state saved by ``state_dict``."""
        for key, value in state.items():
            setattr(self, key, tuple(value) if key.endswith("_bounds") else value)


def monitor_dataset(train_set, val_set, train_images: int = 0) -> SegmentationDataset:
    """What the flow reads: the validation images plus the first ``train_images`` training
    images; the first 8 training images when there is no validation split."""
    val_pairs = list(val_set.pairs) if val_set is not None else []
    if val_pairs and not train_images:
        return val_set
    extra = train_images or 8
    return SegmentationDataset(val_pairs + train_set.pairs[:extra], train_set.num_classes, binarize=train_set.binarize)


def monitor_precision_recall(model, dataset, tile_size: int) -> tuple[float, float]:
    """Precision and recall of "any defect" vs background at the model's own decision
    (arg-max; 0.5 for a binary model), pixel counts pooled over ``dataset``.

    A model that predicts no defect pixel has precision 1 (it made no false alarm), so the
    flow pushes it toward recall.
    """
    from crackal.models.predict import predict_image

    tp = fp = fn = 0
    for index in range(len(dataset)):
        image, mask = dataset.load(index)
        predicted = predict_image(model, image, tile_size=tile_size).argmax(0) > 0
        valid = mask != IGNORE_INDEX
        truth = (mask > 0) & valid
        predicted &= valid
        tp += int((predicted & truth).sum())
        fp += int((predicted & ~truth).sum())
        fn += int((~predicted & truth).sum())
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    return precision, recall
