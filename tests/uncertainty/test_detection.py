import numpy as np
import pytest
import torch

from crackal.data.boxes import ImageBoxes
from crackal.models.detector import create_detector
from crackal.uncertainty.detection import (
    detection_uncertainty,
    group_instances,
    instance_certainty,
    sample_head_dropout,
)


def det(boxes, labels, scores):
    return ImageBoxes(boxes, labels, scores)


def test_image_where_samples_disagree_ranks_above_one_where_they_agree():
    agree = [det([[10, 10, 50, 30]], [1], [0.95]) for _ in range(5)]
    disagree = [det([[10, 10, 50, 30]], [1], [0.9]), det([[14, 6, 60, 40]], [1], [0.4]), det([], [], []),
                det([[10, 10, 50, 30]], [2], [0.5]), det([[70, 70, 90, 90]], [1], [0.3])]
    assert detection_uncertainty(disagree, 3) > detection_uncertainty(agree, 3) + 0.3
    assert detection_uncertainty([det([], [], [])] * 4, 3) == 0.0


def test_each_certainty_term_reacts_to_its_own_disagreement():
    full = [(k, np.array([0, 0, 10, 10.0]), 1, 0.99) for k in range(4)]
    base = instance_certainty(full, 4, 2)
    assert base["occurrence"] == 1 and base["spatial"] == pytest.approx(1) and base["semantic"] > 0.9
    assert instance_certainty(full[:2], 4, 2)["occurrence"] == 0.5
    shifted = full[:2] + [(k, np.array([3, 0, 13, 10.0]), 1, 0.99) for k in (2, 3)]
    assert instance_certainty(shifted, 4, 2)["spatial"] < 0.9
    flipped = full[:2] + [(k, np.array([0, 0, 10, 10.0]), 2, 0.99) for k in (2, 3)]
    assert instance_certainty(flipped, 4, 3)["semantic"] < base["semantic"] - 0.3


def test_grouping_keeps_one_box_per_sample_per_instance():
    samples = [det([[0, 0, 10, 10], [1, 1, 11, 11]], [1, 1], [0.9, 0.8]), det([[0, 0, 10, 10]], [1], [0.7])]
    instances = group_instances(samples)
    assert sorted(len(i) for i in instances) == [1, 2]


def test_head_dropout_samples_differ_and_backbone_runs_once():
    torch.manual_seed(0)
    model = create_detector("resnet18", 2, head_dropout=0.5, score_threshold=0.0)
    calls = []
    model.backbone.register_forward_hook(lambda *args: calls.append(1))
    samples = sample_head_dropout(model, [torch.rand(3, 64, 64), torch.rand(3, 64, 80)], samples=3)
    assert len(calls) == 1 and [len(s) for s in samples] == [3, 3]
    assert not np.allclose(samples[0][0].scores[:5], samples[0][1].scores[:5])
    assert not model.training and not model.head.classification_head.cls_logits[0].training
