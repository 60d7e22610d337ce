import json
import types

import numpy as np
import pytest
import torch

from crackal.data.dataset import SegmentationDataset
from crackal.data.layout import find_pairs
from crackal.errors import CrackalError
from crackal.runs.checkpoint import load_model
from crackal.runs.config import TrainConfig
from crackal.training.fit import WarmupCosine
from crackal.training.trainer import train

TINY = dict(arch="unet", base_channels=8, depth=3, crop_size=64, batch_size=4, samples_per_epoch=8, lr=3e-3, device="cpu")


def datasets(root):
    pairs = find_pairs(root)
    return SegmentationDataset(pairs[:12], 2), SegmentationDataset(pairs[12:], 2)


def test_run_folder_and_falling_loss(synthetic_dataset, tmp_path):
    train_set, val_set = datasets(synthetic_dataset)
    result = train(train_set, val_set, TrainConfig(epochs=6, **TINY), tmp_path / "run", progress=False)
    losses = [h["train_loss"] for h in result.history]
    print("train losses", [round(x, 4) for x in losses])
    assert losses[-1] < losses[0]
    for name in ("config.json", "metrics.json", "training_curves.png", "checkpoints/best.pt", "checkpoints/last.pt"):
        assert (tmp_path / "run" / name).is_file(), name
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["best_epoch"] == result.best_epoch
    assert {"val_f1", "val_precision", "val_recall", "val_loss"} <= set(metrics["history"][0])
    model, state = load_model(tmp_path / "run")
    assert 0 < state["threshold"] < 1 and state["class_weights"][1] > state["class_weights"][0]
    assert not model.training


def test_same_seed_same_model(synthetic_dataset, tmp_path):
    states = []
    for name in ("a", "b"):
        train_set, val_set = datasets(synthetic_dataset)
        train(train_set, val_set, TrainConfig(epochs=2, **TINY), tmp_path / name, progress=False)
        states.append(torch.load(tmp_path / name / "checkpoints" / "last.pt", weights_only=False)["model"])
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key


@pytest.mark.parametrize("ema_decay", [None, 0.9])
def test_resume_ends_where_an_uninterrupted_run_ends(synthetic_dataset, tmp_path, ema_decay):
    options = dict(epochs=4, ema_decay=ema_decay, **TINY)
    train_set, val_set = datasets(synthetic_dataset)
    train(train_set, val_set, TrainConfig(**options), tmp_path / "straight", progress=False)
    train_set, val_set = datasets(synthetic_dataset)
    train(train_set, val_set, TrainConfig(time_limit_min=1e-9, **options), tmp_path / "cut", progress=False)
    assert json.loads((tmp_path / "cut" / "metrics.json").read_text())["history"][-1]["epoch"] == 1
    train_set, val_set = datasets(synthetic_dataset)
    train(train_set, val_set, TrainConfig(**options), tmp_path / "cut", resume=True, progress=False)
    a = torch.load(tmp_path / "straight" / "checkpoints" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "cut" / "checkpoints" / "last.pt", weights_only=False)
    assert b["epoch"] == 4 and len(b["history"]) == 4 and a["finished"] and b["finished"]
    for key in a["model"]:  # the model kept: the moving average of the weights with ema_decay
        torch.testing.assert_close(a["model"][key], b["model"][key], msg=key)


def test_ema_weights_are_what_is_validated_and_kept(synthetic_dataset, tmp_path):
    train_set, val_set = datasets(synthetic_dataset)
    # cut by the clock after epoch 1 of 2: the last checkpoint keeps the raw weights and their average
    train(train_set, val_set, TrainConfig(epochs=2, ema_decay=0.5, time_limit_min=1e-9, **TINY), tmp_path / "run",
          progress=False)
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=False)
    ema_weight = last["ema"]["module.classifier.weight"]
    assert not torch.equal(ema_weight, last["model"]["classifier.weight"])
    best = torch.load(tmp_path / "run" / "checkpoints" / "best.pt", weights_only=False)
    assert best["epoch"] == 1 and torch.equal(best["model"]["classifier.weight"], ema_weight)


def test_a_finished_run_keeps_its_model_not_its_optimiser(synthetic_dataset, tmp_path):
    """A finished run's last checkpoint drops the optimiser state (a project keeps one per round),
    still loads as a model, and resuming the run returns its result without training."""
    train_set, val_set = datasets(synthetic_dataset)
    done = train(train_set, val_set, TrainConfig(epochs=2, **TINY), tmp_path / "run", progress=False)
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=False)
    assert last["finished"] and not {"optimizer", "scheduler", "ema"} & set(last) and last["epoch"] == 2
    model, _ = load_model(tmp_path / "run" / "checkpoints" / "last.pt")
    assert torch.equal(model.state_dict()["classifier.weight"], last["model"]["classifier.weight"])
    stamp = (tmp_path / "run" / "metrics.json").stat().st_mtime_ns
    again = train(train_set, val_set, TrainConfig(epochs=2, **TINY), tmp_path / "run", resume=True, progress=False)
    assert (again.history, again.best_epoch, again.best_score) == (done.history, done.best_epoch, done.best_score)
    assert (tmp_path / "run" / "metrics.json").stat().st_mtime_ns == stamp


def test_a_time_limit_anneals_over_the_epochs_that_fit(synthetic_dataset, tmp_path, monkeypatch):
    """Each epoch takes a minute on a fake clock: 3 of the 12 epochs fit in 3 minutes, so the run
    ends after 3, validated, its learning rate at the schedule's floor (not cut at 80 % of it)."""
    import crackal.training.fit as fit_module
    from crackal.training.trainer import SegmentationRunner

    clock = [0.0]
    monkeypatch.setattr(fit_module, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    one_epoch = SegmentationRunner.train_epoch

    def a_minute_long(self, *args):
        clock[0] += 60
        return one_epoch(self, *args)

    monkeypatch.setattr(SegmentationRunner, "train_epoch", a_minute_long)
    train_set, val_set = datasets(synthetic_dataset)
    result = train(train_set, val_set, TrainConfig(epochs=12, time_limit_min=3, **TINY), tmp_path / "run", progress=False)
    assert [h["epoch"] for h in result.history] == [1, 2, 3] and "val_f1" in result.history[-1]
    assert [h["epochs_planned"] for h in result.history] == [3, 3, 3]
    assert result.history[-1]["lr"] == pytest.approx(0.01 * TINY["lr"], rel=1e-3)


def test_schedule_warms_up_then_decays():
    f = WarmupCosine(10, 100)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(55) < f(20) and f(99) == pytest.approx(0.01, abs=0.01)


@pytest.mark.parametrize(
    "options,match",
    [
        ({"arch": "vit"}, "arch must be one of"),
        ({"crop_size": 100}, "multiple of 32"),
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"loss": "l2"}, "is not a sum of"),
        ({"class_weighting": "x"}, "class_weighting must be one of"),
        ({"device": "tpu"}, "device must be"),
        ({"downscale": 3}, "downscale must be one of"),
    ],
)
def test_bad_options(options, match):
    with pytest.raises(CrackalError, match=match):
        TrainConfig(**options)


def test_validation_every_n_epochs_keeps_the_best_validated_epoch(synthetic_dataset, tmp_path):
    train_set, val_set = datasets(synthetic_dataset)
    result = train(train_set, val_set, TrainConfig(epochs=3, val_interval=2, **TINY), tmp_path / "run", progress=False)
    assert ["val_f1" in h for h in result.history] == [False, True, True]  # epoch 2, and the last one
    assert result.best_epoch in (2, 3)
    assert (tmp_path / "run" / "training_curves.png").is_file()


def test_a_downscaled_network_trains_on_logits_and_masks_at_its_own_scale(synthetic_dataset):
    from crackal.training.trainer import SegmentationRunner

    train_set, val_set = datasets(synthetic_dataset)
    runner = SegmentationRunner(train_set, val_set, TrainConfig(epochs=1, downscale=4, **TINY), torch.device("cpu"))
    seen = []
    loss_fn = runner.loss_fn
    runner.loss_fn = lambda logits, masks: seen.append((logits.shape, masks.shape)) or loss_fn(logits, masks)
    masks = torch.zeros(2, 64, 64, dtype=torch.long)
    masks[:, :, 10] = 1  # a one-pixel crack line survives the shrinking
    assert np.isfinite(runner._step(torch.randn(2, 3, 64, 64), masks))
    assert seen == [((2, 1, 16, 16), (2, 16, 16))]


def test_shrunk_masks_keep_thin_defects_and_ignore_empty_blocks():
    from crackal.data.transforms import shrink_masks

    masks = torch.zeros(1, 8, 8, dtype=torch.long)
    masks[0, :4, 1] = 2  # a line through the top-left block: kept
    masks[0, 5, 5] = 1  # one pixel of sixteen in the bottom-right block: background
    masks[0, :4, 4:] = 255  # the top-right block is all ignored
    masks[0, 4:, :4] = 3
    masks[0, 4:, 3] = 1  # the bottom-left block: the larger defect class wins
    assert shrink_masks(masks, 4, 4).tolist() == [[[2, 255], [3, 0]]]


def test_a_downscaled_run_reloads_as_it_was_trained(synthetic_dataset, tmp_path):
    train_set, val_set = datasets(synthetic_dataset)
    train(train_set, val_set, TrainConfig(epochs=1, downscale=2, **TINY), tmp_path / "run", progress=False)
    model, state = load_model(tmp_path / "run")
    assert state["config"]["downscale"] == 2 and model.downscale == 2
    assert model(torch.zeros(1, 3, 40, 56)).shape == (1, 1, 40, 56)


def test_fewer_images_than_the_batch_still_train(tiny_dataset, tmp_path):
    pairs = find_pairs(tiny_dataset)[:2]
    config = TrainConfig(epochs=2, **{**TINY, "batch_size": 8, "crop_size": 32})
    result = train(SegmentationDataset(pairs, 2), None, config, tmp_path / "run", progress=False)
    assert all(np.isfinite(h["train_loss"]) for h in result.history)  # a batch of 2, not an empty epoch
