"""Uncertainty of a detector, scored per image from the disagreement of several predictions.

Samples come from dropout in the two RetinaNet heads (the backbone and pyramid run once per
image; only the heads are re-run) or from an ensemble of detectors. Boxes of the samples are
grouped into instances (greedy IoU matching, at most one box per sample in an instance), and
each instance gets three certainties, as in the instance-level scoring of MaskAL / BoxAL:

* occurrence: the share of samples that found it (how often the box appears);
* semantic: 1 - entropy of the mean class distribution, normalised by log(C); a sample that
  found the box contributes ``score`` to its label and ``1 - score`` to background, so both a
  label flip and a hesitant score lower it;
* spatial: mean IoU between the instance's boxes and their mean box (box spread).

An image's uncertainty is 1 - the mean instance certainty (product of the three); an image
where no sample finds anything scores 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import numpy as np
import torch
from torch import nn

from crackal.data.boxes import ImageBoxes
from crackal.errors import CrackalError
from crackal.models.detect import as_image_boxes
from crackal.models.detector import head_dropout_layers

if TYPE_CHECKING:
    from torchvision.models.detection import RetinaNet


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of two ``(N, 4)`` / ``(M, 4)`` box arrays."""
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = lambda z: (z[:, 2] - z[:, 0]) * (z[:, 3] - z[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


def group_instances(samples: Sequence[ImageBoxes], iou_threshold: float = 0.5) -> list[list[tuple[int, np.ndarray, int, float]]]:
    """Instances as lists of ``(sample index, box, label, score)``, highest scores first: each
    box joins the instance whose mean box it overlaps most (IoU >= ``iou_threshold``) among
    those without a box of its sample yet, or starts a new one."""
    found = [(float(s), k, box, int(label)) for k, sample in enumerate(samples)
             for box, label, s in zip(sample.boxes, sample.labels, cast(np.ndarray, sample.scores))]  # predictions: scored
    instances: list[list[tuple[int, np.ndarray, int, float]]] = []
    sums = np.zeros((len(found), 4))  # running box sums and sample membership, one row per instance
    has_sample = np.zeros((len(found), len(samples)), bool)
    for score, k, box, label in sorted(found, key=lambda item: -item[0]):
        n = len(instances)
        best = -1
        if n:
            means = sums[:n] / np.array([len(i) for i in instances])[:, None]
            ious = np.where(has_sample[:n, k], -1.0, box_iou(box[None], means)[0])
            best = int(ious.argmax()) if ious.max() >= iou_threshold else -1
        if best < 0:
            instances.append([])
            best = n
        instances[best].append((k, box, label, score))
        sums[best] += box
        has_sample[best, k] = True
    return instances


def instance_certainty(instance: list[tuple[int, np.ndarray, int, float]], num_samples: int, num_classes: int) -> dict[str, float]:
    """``occurrence``, ``semantic`` and ``spatial`` certainty of one instance (see the module
    docstring) and their product, ``certainty``."""
    occurrence = len(instance) / num_samples
    mean_dist = np.zeros(num_classes)
    for _, _, label, score in instance:
        mean_dist[label] += score
        mean_dist[0] += 1 - score
    mean_dist /= len(instance)
    nonzero = mean_dist[mean_dist > 0]
    semantic = 1 - float(-(nonzero * np.log(nonzero)).sum() / np.log(num_classes))
    boxes = np.stack([m[1] for m in instance])
    spatial = float(box_iou(boxes, boxes.mean(0)[None]).mean())
    return {"occurrence": occurrence, "semantic": semantic, "spatial": spatial, "certainty": occurrence * semantic * spatial}


def detection_uncertainty(samples: Sequence[ImageBoxes], num_classes: int, iou_threshold: float = 0.5) -> float:
    """One score per image: 1 - mean instance certainty (0 when nothing was found)."""
    instances = group_instances(samples, iou_threshold)
    if not instances:
        return 0.0
    return 1.0 - float(np.mean([instance_certainty(i, len(samples), num_classes)["certainty"] for i in instances]))


def _split_by_level(tensor: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    return list(tensor.split(sizes, dim=1 if tensor.dim() == 3 else 0))


@torch.inference_mode()
def sample_head_dropout(model: RetinaNet, images: list[torch.Tensor], samples: int) -> list[list[ImageBoxes]]:
    """``samples`` detections per image with the heads' dropout on; backbone and pyramid run once.

    Follows ``torchvision``'s ``RetinaNet.forward`` (eval branch) with the heads in a loop.
    """
    dropouts = head_dropout_layers(model)
    if not dropouts:
        raise CrackalError("this detector has no head dropout (trained with --head-dropout 0); use an ensemble")
    model.eval()
    device = next(model.parameters()).device
    images = [image.to(device) for image in images]
    original_sizes = [tuple(image.shape[-2:]) for image in images]
    per_image: list[list[ImageBoxes]] = [[] for _ in images]
    try:
        for layer in dropouts:
            layer.train()
        batch, _ = model.transform(images)
        features = list(model.backbone(batch.tensors).values())
        anchors = model.anchor_generator(batch, features)
        locations = [f.size(2) * f.size(3) for f in features]
        for _ in range(samples):
            head = model.head(features)
            per_anchor = head["cls_logits"].size(1) // sum(locations)
            sizes = [n * per_anchor for n in locations]
            split_head = {k: _split_by_level(v, sizes) for k, v in head.items()}
            split_anchors = [list(a.split(sizes)) for a in anchors]
            detections = model.postprocess_detections(split_head, split_anchors, batch.image_sizes)
            detections = model.transform.postprocess(detections, batch.image_sizes, original_sizes)
            for i, detection in enumerate(detections):
                per_image[i].append(as_image_boxes(detection))
    finally:
        model.eval()
    return per_image


@torch.inference_mode()
def sample_ensemble(models: Sequence[nn.Module], images: list[torch.Tensor]) -> list[list[ImageBoxes]]:
    """One detection per member per image."""
    per_image: list[list[ImageBoxes]] = [[] for _ in images]
    for model in models:
        model.eval()
        device = next(model.parameters()).device
        for i, detection in enumerate(model([image.to(device) for image in images])):
            per_image[i].append(as_image_boxes(detection))
    return per_image
