"""Multi-class training options end to end: class-aware crops (logged per epoch) with the
two-scale model, a reload that predicts whole images, and train-on-synthetic then fine-tune."""

import json

import numpy as np
import pytest

from crackal import api
from crackal.errors import CrackalError
from crackal.runs.checkpoint import load_model
from crackal.runs.config import TrainConfig

TINY = {"arch": "unet", "epochs": 1, "crop_size": 32, "base_channels": 4, "depth": 2, "batch_size": 4, "device": "cpu", "progress": False}


@pytest.fixture(scope="module")
def defects(tmp_path_factory):
    return api.synth(tmp_path_factory.mktemp("defects"), count=6, size=64, seed=3, extra_classes=True)


def test_class_aware_two_scale_run_logs_crop_shares_and_predicts(defects, tmp_path):
    result = api.train(defects, tmp_path / "run", val=1, test=1, class_aware=1.0, context=2, **TINY)
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())["history"][0]
    names = TrainConfig.from_dict(json.loads((tmp_path / "run" / "config.json").read_text())).class_names
    shares = [record[f"crops_{name}"] for name in names[1:]]
    assert len(shares) == len(names) - 1 == 4
    assert all(0 <= s <= 1 for s in shares) and sum(shares) >= 1  # every crop is centred on a defect pixel
    model, _ = load_model(result.best_checkpoint)
    assert model.context == 2
    scores = api.evaluate(tmp_path / "run", tolerances=(0,), progress=False)
    assert len(scores["argmax"]["matrix"]) == 5 and (tmp_path / "run" / "evaluation_test_confusion.png").is_file()


def test_train_on_synthetic_then_fine_tune_from_its_encoder(defects, synthetic_dataset, tmp_path):
    api.train(defects, tmp_path / "synth", val=1, test=1, **TINY)
    donor, _ = load_model(tmp_path / "synth")
    api.train(synthetic_dataset, tmp_path / "real", val=2, test=2, **{**TINY, "epochs": 1, "lr": 1e-12, "warmup_epochs": 0},
              encoder_weights=tmp_path / "synth" / "checkpoints" / "best.pt")
    tuned, _ = load_model(tmp_path / "real")
    first = donor.trunk.down[0][0].weight.detach().numpy()
    assert np.allclose(tuned.trunk.down[0][0].weight.detach().numpy(), first, atol=1e-6)  # binary head, same encoder
    assert tuned.classifier.out_channels == 1


def test_context_and_class_aware_options_are_checked():
    with pytest.raises(CrackalError, match="class_aware"):
        TrainConfig(class_aware=2.0)
    with pytest.raises(CrackalError, match="context"):
        TrainConfig(context=2, arch="fpn")
    with pytest.raises(CrackalError, match="tile_filter"):
        TrainConfig(arch="unet", context=2, tile_filter=64)
