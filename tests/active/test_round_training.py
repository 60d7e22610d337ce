"""Round training that grows with the labelled set: the step schedule, early stopping on a
validation slice of the labelled images (never the held-out set), warm starts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from crackal.training.config import TrainConfig
from crackal.training.fit import fit


class ScriptedRunner:
    """A runner whose validation scores are given: epoch e validates to ``scores[e]``; the
    model's single weight is set to the epoch number, so a checkpoint tells its epoch."""

    score_name = "val_f1"
    protocol = "scripted"
    has_validation = True

    def __init__(self, scores: list[float]) -> None:
        self.scores, self.model, self.epoch = scores, nn.Linear(1, 1, bias=False), 0

    def train_epoch(self, epoch: int, seed: int, progress) -> dict:
        self.epoch = epoch
        with torch.no_grad():
            self.model.weight.fill_(epoch + 1)
        return {"train_loss": 0.0}

    def validate(self) -> dict:
        return {"val_f1": self.scores[self.epoch]}

    def best_model(self) -> nn.Module:
        return self.model

    def checkpoint_extras(self) -> dict:
        return {}

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])

    def metrics_extras(self) -> dict:
        return {}

    def finish(self, run_dir) -> None:
        pass


@pytest.mark.parametrize("patience, trained", [(2, 4), (None, 8)])
def test_early_stopping_keeps_the_best_validation_checkpoint(tmp_path, patience, trained):
    scores = [0.1, 0.5, 0.4, 0.3, 0.9, 0.2, 0.2, 0.2]
    config = TrainConfig(epochs=len(scores), patience=patience, device="cpu")
    (tmp_path / "checkpoints").mkdir()
    result = fit(ScriptedRunner(scores), config, tmp_path)
    assert len(result.history) == trained  # patience 2: epochs 3 and 4 do not beat epoch 2, so epoch 5 never runs
    best = torch.load(result.best_checkpoint, weights_only=True)
    expected = 2 if patience else 5
    assert result.best_epoch == best["epoch"] == expected
    assert best["model"]["weight"].item() == expected


def test_patience_is_checked():
    from crackal.errors import OptionError

    with pytest.raises(OptionError, match="patience"):
        TrainConfig(patience=0)
