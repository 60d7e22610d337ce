import pytest
import torch
from torch.nn import functional as F

from crackal.errors import CrackalError
from crackal.losses import SegmentationLoss, class_weights, dice_loss, focal_loss, weighted_cross_entropy


def test_class_weights_from_pixel_counts():
    assert class_weights([98, 2], "inverse").tolist() == pytest.approx([100 / 196, 25.0])
    assert class_weights([98, 2], "sqrt_inverse").tolist() == pytest.approx([(100 / 196) ** 0.5, 5.0])
    assert class_weights([98, 2], "none").tolist() == [1.0, 1.0]
    median = class_weights([70, 20, 10], "median").tolist()
    assert median == pytest.approx([0.2 / 0.7, 1.0, 2.0])


def test_absent_class_gets_the_largest_weight_and_cap():
    w = class_weights([1000, 0, 10], "inverse", max_weight=20)
    assert w[1] == w[2] == 20


def test_unknown_weighting():
    with pytest.raises(CrackalError, match="class_weighting must be one of"):
        class_weights([1, 1], "magic")


def test_binary_weighted_ce_equals_weighted_bce():
    torch.manual_seed(0)
    logits = torch.randn(2, 1, 8, 8)
    target = (torch.rand(2, 8, 8) > 0.8).long()
    w = torch.tensor([0.5, 4.0])
    ours = weighted_cross_entropy(logits, target, w)
    pixel_w = w[target]
    bce = F.binary_cross_entropy_with_logits(logits[:, 0], target.float(), reduction="none")
    assert ours.item() == pytest.approx(((bce * pixel_w).sum() / pixel_w.sum()).item(), rel=1e-5)


def test_ignored_pixels_do_not_count():
    logits = torch.zeros(1, 3, 4, 4)
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    logits[0, 0] = 5.0
    base = weighted_cross_entropy(logits, target).item()
    target[0, 0, 0] = 255
    logits[0, 2, 0, 0] = 50.0  # a terrible prediction on an ignored pixel
    assert weighted_cross_entropy(logits, target).item() == pytest.approx(base, rel=1e-5)
    assert focal_loss(logits, target).item() < 1e-3


def test_dice_is_zero_for_a_perfect_and_high_for_a_wrong_prediction():
    target = torch.zeros(1, 16, 16, dtype=torch.long)
    target[0, 8, :] = 1
    perfect = (target.float() * 40 - 20)[:, None]
    assert dice_loss(perfect, target).item() < 0.01
    assert dice_loss(-perfect, target).item() > 0.9


def test_recall_weight_turns_dice_into_tversky_by_hand():
    target = torch.tensor([[[1, 1, 0, 0]]])
    probs = torch.tensor([0.75, 0.25, 0.5, 0.0])  # crack probability per pixel
    logits = torch.logit(probs.clamp(1e-6, 1 - 1e-6)).view(1, 1, 1, 4)
    tp, fp, fn = 1.0, 0.5, 1.0  # soft counts of the crack class
    for w in (1.0, 3.0, 1 / 3):
        alpha, beta = 2 / (1 + w), 2 * w / (1 + w)
        expected = 1 - (2 * tp + 1) / (2 * tp + alpha * fp + beta * fn + 1)
        assert dice_loss(logits, target, recall_weight=w).item() == pytest.approx(expected, rel=1e-4)
    # here misses outweigh false alarms, so weighing recall costs more
    assert dice_loss(logits, target, recall_weight=3.0) > dice_loss(logits, target) > dice_loss(logits, target, recall_weight=1 / 3)


def test_focal_down_weights_easy_pixels():
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    easy = torch.full((1, 1, 4, 4), -4.0)
    assert focal_loss(easy, target).item() < 0.01 * weighted_cross_entropy(easy, target).item()


@pytest.mark.parametrize("spec", ["ce", "dice", "focal", "ce+dice", "focal+dice"])
def test_combined_loss_has_gradients(spec):
    logits = torch.randn(2, 3, 8, 8, requires_grad=True)
    target = torch.randint(0, 3, (2, 8, 8))
    loss = SegmentationLoss(spec, torch.tensor([0.5, 2.0, 3.0]))(logits, target)
    loss.backward()
    assert torch.isfinite(loss) and logits.grad.abs().sum() > 0


def test_sum_is_the_sum_of_terms():
    logits, target = torch.randn(2, 1, 8, 8), torch.randint(0, 2, (2, 8, 8))
    w = torch.tensor([1.0, 3.0])
    both = SegmentationLoss("ce+dice", w)(logits, target)
    assert both.item() == pytest.approx((weighted_cross_entropy(logits, target, w) + dice_loss(logits, target)).item(), rel=1e-5)


def test_class_weights_can_change_between_rounds():
    loss = SegmentationLoss("ce", torch.tensor([1.0, 1.0]))
    logits, target = torch.randn(1, 1, 8, 8), torch.randint(0, 2, (1, 8, 8))
    before = loss(logits, target).item()
    loss.set_class_weights(torch.tensor([1.0, 10.0]))
    assert loss(logits, target).item() != pytest.approx(before)


def test_unknown_loss_term():
    with pytest.raises(CrackalError, match="loss 'ce\\+lovasz' is not a sum of"):
        SegmentationLoss("ce+lovasz")


def test_adaptive_ce_weights_by_the_predicted_background_foreground_ratio():
    from crackal.losses import adaptive_cross_entropy

    logits = torch.full((1, 1, 4, 4), -2.0)  # sigmoid: foreground probability 0.119 everywhere
    logits[0, 0, 0, :2] = 3.0
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, 0, :3] = 1
    fg = torch.sigmoid(logits).mean()
    expected_weights = torch.stack([1 / (2 * (1 - fg)), 1 / (2 * fg)])
    two_class = torch.cat([torch.zeros_like(logits), logits], 1)
    expected = F.cross_entropy(two_class, target, weight=expected_weights)
    assert float(adaptive_cross_entropy(logits, target)) == pytest.approx(float(expected), rel=1e-5)
    assert expected_weights[1] / expected_weights[0] == pytest.approx(float((1 - fg) / fg))


def test_adaptive_ce_with_even_predictions_is_plain_ce():
    from crackal.losses import adaptive_cross_entropy

    target = (torch.rand(2, 8, 8) > 0.9).long()
    logits = torch.zeros(2, 1, 8, 8)
    assert float(adaptive_cross_entropy(logits, target)) == pytest.approx(float(weighted_cross_entropy(logits, target)))
    assert SegmentationLoss("adaptive+dice")(logits, target) > 0


def test_multiclass_weights_by_hand():
    assert class_weights([60, 30, 10], "inverse").tolist() == pytest.approx([1 / 1.8, 1 / 0.9, 1 / 0.3])
    assert class_weights([60, 30, 10, 0], "sqrt_inverse").tolist() == pytest.approx(
        [(1 / 2.4) ** 0.5, (1 / 1.2) ** 0.5, (1 / 0.4) ** 0.5, (1 / 0.4) ** 0.5])
