import json

import numpy as np
import pytest
import torch
from torch import nn

from crackal.data.dataset import SegmentationDataset
from crackal.data.layout import find_pairs
from crackal.data.sampling import CropSampler
from crackal.errors import CrackalError
from crackal.losses import SegmentationLoss
from crackal.models import create_model
from crackal.runs.checkpoint import load_model
from crackal.runs.config import TrainConfig
from crackal.training.balance import PRFBalancer, monitor_dataset, monitor_precision_recall, prf_parameter
from crackal.training.evaluation import evaluate_model
from crackal.training.fit import seed_everything
from crackal.training.trainer import train

TINY = dict(arch="unet", base_channels=8, depth=3, crop_size=32, batch_size=4, samples_per_epoch=8, lr=3e-3, device="cpu")


def test_prf_parameter():
    assert prf_parameter(0.9, 0.3) == pytest.approx(0.5)
    assert prf_parameter(0.3, 0.9) == pytest.approx(-0.5)
    assert prf_parameter(0.0, 0.0) == 0.0


def test_precision_above_recall_pushes_toward_cracks():
    balancer = PRFBalancer(positive_share=0.5, weight_scale=1.0)
    entry = balancer.update(precision=0.9, recall=0.3, step=10)
    assert balancer.positive_share == pytest.approx(0.5 + 0.2 * 0.5)
    assert balancer.weight_scale == pytest.approx(np.exp(0.5))
    assert entry == {"step": 10, "precision": 0.9, "recall": 0.3, "prf": pytest.approx(0.5),
                     "positive_share": balancer.positive_share, "weight_scale": balancer.weight_scale}


def test_recall_above_precision_pushes_toward_background():
    balancer = PRFBalancer(positive_share=0.5, weight_scale=2.0)
    balancer.update(precision=0.3, recall=0.9)
    assert balancer.positive_share == pytest.approx(0.4) and balancer.weight_scale == pytest.approx(2 * np.exp(-0.5))


def test_balanced_precision_and_recall_change_nothing():
    balancer = PRFBalancer(positive_share=0.37, weight_scale=1.7)
    balancer.update(precision=0.6, recall=0.6)
    assert (balancer.positive_share, balancer.weight_scale) == (0.37, 1.7)
    assert len(balancer.log) == 1


def test_bounds_hold_however_long_the_flow_pushes():
    balancer = PRFBalancer()
    for _ in range(50):
        balancer.update(precision=1.0, recall=0.0)
    assert (balancer.positive_share, balancer.weight_scale) == (balancer.share_bounds[1], balancer.scale_bounds[1])
    for _ in range(50):
        balancer.update(precision=0.0, recall=1.0)
    assert (balancer.positive_share, balancer.weight_scale) == (balancer.share_bounds[0], balancer.scale_bounds[0])


def test_scaled_weights_touch_only_defect_classes_and_state_round_trips():
    balancer = PRFBalancer(weight_scale=3.0)
    assert balancer.scaled_weights(torch.tensor([0.5, 2.0, 4.0])).tolist() == [0.5, 6.0, 12.0]
    balancer.update(0.8, 0.4, step=3)
    copy = PRFBalancer()
    copy.load_state_dict(json.loads(json.dumps(balancer.state_dict())))
    assert copy == balancer


def test_apply_hands_the_flow_to_the_sampler_and_every_loss_term():
    balancer = PRFBalancer(positive_share=0.3, weight_scale=4.0)
    sampler, loss = CropSampler(32, "share"), SegmentationLoss("ce+dice", torch.ones(2))
    balancer.apply(loss, sampler, torch.tensor([0.5, 2.0]))
    assert sampler.positive_share == 0.3
    assert loss.class_weights.tolist() == [0.5, 8.0] and loss.recall_weight == 4.0


class BrightIsCrack(nn.Module):
    """Predicts crack (logit +10) exactly where the first channel is bright."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.where(x[:, :1] > 0, 10.0, -10.0)


class ListDataset:
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def load(self, index):
        return self.items[index]


def test_monitor_precision_recall_by_hand():
    image = np.zeros((8, 8, 3), np.uint8)
    image[0, :4] = 255  # predicted crack: 4 pixels
    mask = np.zeros((8, 8), np.uint8)
    mask[0, 2:8] = 1  # true crack: 6 pixels, 2 of them predicted
    mask[7, 7] = 255  # ignored
    precision, recall = monitor_precision_recall(BrightIsCrack(), ListDataset([(image, mask)]), tile_size=64)
    assert (precision, recall) == (pytest.approx(2 / 4), pytest.approx(2 / 6))
    nothing = np.zeros((8, 8, 3), np.uint8)
    assert monitor_precision_recall(BrightIsCrack(), ListDataset([(nothing, mask)]), 64) == (1.0, 0.0)


def datasets(root):
    pairs = find_pairs(root)
    return SegmentationDataset(pairs[:12], 2), SegmentationDataset(pairs[12:], 2)


def test_prf_training_logs_the_flow_every_interval(synthetic_dataset, tmp_path):
    train_set, val_set = datasets(synthetic_dataset)
    config = TrainConfig(epochs=3, balance="prf", balance_interval=1, monitor_train=2, **TINY)
    result = train(train_set, val_set, config, tmp_path / "run", progress=False)
    log = json.loads((tmp_path / "run" / "metrics.json").read_text())["balance"]
    assert [e["step"] for e in log] == list(range(1, 7))  # 2 steps per epoch, 3 epochs
    bounds = PRFBalancer()
    assert all(bounds.share_bounds[0] <= e["positive_share"] <= bounds.share_bounds[1] for e in log)
    assert all(bounds.scale_bounds[0] <= e["weight_scale"] <= bounds.scale_bounds[1] for e in log)
    assert {"prf", "positive_share", "weight_scale"} <= set(result.history[-1])
    assert (tmp_path / "run" / "balance.png").is_file()


def test_monitor_is_validation_plus_chosen_training_images(synthetic_dataset):
    train_set, val_set = datasets(synthetic_dataset)
    assert monitor_dataset(train_set, val_set) is val_set
    wider = monitor_dataset(train_set, val_set, train_images=3)
    assert wider.pairs == val_set.pairs + train_set.pairs[:3]
    assert monitor_dataset(train_set, None).pairs == train_set.pairs[:8]
    assert monitor_dataset(train_set, None, train_images=2).pairs == train_set.pairs[:2]
    with pytest.raises(CrackalError, match="monitor_train must be 0 or more"):
        TrainConfig(monitor_train=-1)


def test_prf_resume_ends_where_an_uninterrupted_run_ends(synthetic_dataset, tmp_path):
    options = dict(epochs=3, balance="prf", balance_interval=1, **TINY)
    train(*datasets(synthetic_dataset), TrainConfig(**options), tmp_path / "straight", progress=False)
    train(*datasets(synthetic_dataset), TrainConfig(time_limit_min=1e-9, **options), tmp_path / "cut", progress=False)
    train(*datasets(synthetic_dataset), TrainConfig(**options), tmp_path / "cut", resume=True, progress=False)
    a = torch.load(tmp_path / "straight" / "checkpoints" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "cut" / "checkpoints" / "last.pt", weights_only=False)
    balance_logs = [json.loads((tmp_path / run / "metrics.json").read_text())["balance"] for run in ("straight", "cut")]
    assert balance_logs[0] == balance_logs[1] and len(balance_logs[0]) == 6  # every step of 3 epochs
    for key in a["model"]:
        torch.testing.assert_close(a["model"][key], b["model"][key], msg=key)


@pytest.mark.parametrize("options", [
    dict(loss="ce"), dict(loss="ce", class_weighting="none"), dict(loss="dice"), dict(loss="focal"),
    dict(loss="adaptive"), dict(balance="undersample"), dict(balance="prf", loss="ce+dice"), dict(balance="prf", loss="dice"),
    dict(tile_filter=16),
])
def test_every_imbalance_option_trains(synthetic_dataset, tmp_path, options):
    """Judged by plain cross-entropy on held-out images (a weighted loss moves with its weights)."""
    train_set, val_set = datasets(synthetic_dataset)
    config = TrainConfig(epochs=4, **{**TINY, **options})
    train(train_set, val_set, config, tmp_path / "run", progress=False)
    seed_everything(config.seed)
    untrained = create_model(**config.model_kwargs())
    trained, _ = load_model(tmp_path / "run")
    plain_ce = SegmentationLoss("ce")
    before = evaluate_model(untrained, val_set, config.class_names, loss_fn=plain_ce)[1]
    after = evaluate_model(trained, val_set, config.class_names, loss_fn=plain_ce)[1]
    print(options, "plain CE before", round(before, 4), "after", round(after, 4))
    assert np.isfinite(after) and after < before


def test_bad_balance_options():
    with pytest.raises(CrackalError, match="balance must be one of"):
        TrainConfig(balance="oversample")
    with pytest.raises(CrackalError, match="has none of them"):
        TrainConfig(balance="prf", loss="adaptive")
    with pytest.raises(CrackalError, match="positive_share"):
        TrainConfig(positive_share=1.5)
