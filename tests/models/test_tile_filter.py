import pytest
import torch

from crackal.models import create_model
from crackal.models.patch_classifier import PatchClassifier
from crackal.models.tile_filter import TileFilterSegmenter


def test_squares_cover_the_image_with_padding():
    model = create_model("unet", base_channels=8, depth=2, tile_filter=32)
    squares, grid = model.cells(torch.randn(2, 3, 70, 100))
    assert grid == (3, 4) and squares.shape == (2 * 12, 3, 32, 32)
    x = torch.arange(64 * 64, dtype=torch.float32).reshape(1, 1, 64, 64)
    squares, _ = model.cells(x)
    assert torch.equal(squares[1, 0], x[0, 0, :32, 32:])  # row-major order


def test_square_labels_mark_only_squares_with_defects():
    model = TileFilterSegmenter(create_model("unet", base_channels=8, depth=2), cell=16)
    mask = torch.zeros(1, 32, 48, dtype=torch.long)
    mask[0, 20, 40] = 1  # square (1, 2)
    mask[0, 2, 2] = 255  # ignored: not a defect
    assert model.square_labels(mask).tolist() == [0, 0, 0, 0, 0, 1]


@pytest.mark.parametrize("num_classes", [2, 4])
def test_rejected_squares_become_background_and_accepted_ones_keep_the_segmentation(num_classes):
    torch.manual_seed(0)
    model = create_model("unet", num_classes, base_channels=8, depth=2, tile_filter=16).eval()
    x = torch.randn(1, 3, 32, 40)
    plain = model.segmenter(x)
    head = model.classifier.classifier
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor([0.0, 10.0]))  # every square: crack
        assert torch.equal(model(x), plain)
        head.bias.copy_(torch.tensor([10.0, 0.0]))  # every square: no crack
        out = model(x)
    classes = (out.sigmoid() > 0.5).long()[:, 0] if num_classes == 2 else out.argmax(1)
    assert (classes == 0).all() and out.shape == plain.shape
    model.train()
    torch.manual_seed(1)
    train_out = model(x)
    torch.manual_seed(1)  # same dropout draw
    assert torch.equal(train_out, model.segmenter(x))  # training: plain logits, classifier trained apart


def test_patch_classifier_outputs_one_logit_per_class():
    assert PatchClassifier(num_classes=3)(torch.zeros(4, 3, 227, 227)).shape == (4, 3)
