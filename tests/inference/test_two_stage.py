import numpy as np
import torch
from torch import nn

from crackal.inference.two_stage import grow_boxes, merge_overlapping, predict_two_stage
from crackal.models import create_model
from crackal.models.predict import predict_image


class FixedDetector(nn.Module):
    """Returns the same boxes for every image (a stand-in for a trained RetinaNet)."""

    def __init__(self, boxes, scores):
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))
        self.boxes, self.scores = torch.tensor(boxes, dtype=torch.float32), torch.tensor(scores)

    def forward(self, images):
        return [{"boxes": self.boxes, "scores": self.scores, "labels": torch.ones(len(self.scores), dtype=torch.int64)} for _ in images]


def segmenter():
    torch.manual_seed(0)
    return create_model("unet", 2, base_channels=4, depth=2).eval()


def test_two_stage_equals_full_image_when_a_box_covers_it():
    image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    model = segmenter()
    probs, boxes, regions = predict_two_stage(model, FixedDetector([[0, 0, 64, 48]], [0.9]), image, 2, 0.5, margin=8)
    np.testing.assert_allclose(probs, predict_image(model, image), atol=1e-6)
    assert regions.tolist() == [[0, 0, 64, 48]]


def test_outside_boxes_is_background_and_low_scores_are_dropped():
    image = np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    probs, boxes, regions = predict_two_stage(segmenter(), FixedDetector([[10, 10, 20, 20], [40, 30, 50, 40]], [0.9, 0.2]),
                                              image, 2, 0.5, margin=2)
    assert len(boxes) == 1 and regions.tolist() == [[8, 8, 22, 22]]
    outside = np.ones((48, 64), bool)
    outside[8:22, 8:22] = False
    assert (probs[0][outside] == 1).all() and (probs[1][outside] == 0).all()
    assert (probs[1][8:22, 8:22] > 0).all()


def test_grow_and_merge():
    grown = grow_boxes(np.array([[2.5, 3, 10, 12]]), 4, 20, 30)
    assert grown.tolist() == [[0, 0, 14, 16]]
    assert merge_overlapping(np.array([[0, 0, 5, 5], [10, 10, 15, 15], [4, 4, 11, 11]])).tolist() == [[0, 0, 15, 15]]
    assert merge_overlapping(np.zeros((0, 4), np.int64)).shape == (0, 4)
