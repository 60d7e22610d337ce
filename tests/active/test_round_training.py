"""Round training that grows with the labelled set: the step schedule, early stopping on a
validation slice of the labelled images (never the held-out set), warm starts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from crackal.active.config import ALConfig
from crackal.errors import CrackalError
from crackal.runs.config import TrainConfig
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

    def anneal_over(self, epochs: int) -> None:
        self.annealed_over = epochs


@pytest.mark.parametrize("scores, patience, trained, expected", [
    ([0.1, 0.5, 0.4, 0.3, 0.9, 0.2, 0.2, 0.2], 2, 4, 2),  # epochs 3 and 4 do not beat epoch 2, so epoch 5 never runs
    ([0.1, 0.5, 0.4, 0.3, 0.9, 0.2, 0.2, 0.2], None, 8, 5),
    ([0.5, 0.1, 0.1, 0.9, 0.2, 0.2, 0.2, 0.2], 2, 6, 4),  # no stop in the first half of the epochs: epoch 4 runs
])
def test_early_stopping_keeps_the_best_validation_checkpoint(tmp_path, scores, patience, trained, expected):
    config = TrainConfig(epochs=len(scores), patience=patience, device="cpu")
    (tmp_path / "checkpoints").mkdir()
    result = fit(ScriptedRunner(scores), config, tmp_path)
    assert len(result.history) == trained
    best = torch.load(result.best_checkpoint, weights_only=True)
    assert result.best_epoch == best["epoch"] == expected
    assert best["model"]["weight"].item() == expected


def test_patience_is_checked():
    from crackal.errors import OptionError

    with pytest.raises(OptionError, match="patience"):
        TrainConfig(patience=0)


def test_steps_grow_with_labels_within_floor_and_cap():
    from crackal.active.config import ALConfig

    config = ALConfig(round_steps="auto", steps_per_label=5, min_steps=40, max_steps=300)
    steps = [config.steps_for(n) for n in (1, 8, 20, 40, 60, 1000)]
    assert steps == [40, 40, 100, 200, 300, 300]
    # the round's epochs make at least those steps, and not a whole epoch more (64 crops / 8 = 8 steps an epoch)
    for labelled, wanted in zip((20, 40, 1000), (100, 200, 300)):
        made = config.round_config(1, labelled=labelled).epochs * 8
        assert wanted <= made < wanted + 8
    assert ALConfig().round_config(1, labelled=1000).epochs == 12  # round_steps None: the recipe's epochs
    assert ALConfig(round_steps="50").round_config(1, labelled=1000).epochs == 7  # a fixed count (50 / 8 up)


def test_round_steps_are_checked():
    from crackal.active.config import ALConfig
    from crackal.errors import OptionError

    with pytest.raises(OptionError, match="round_steps"):
        ALConfig(round_steps="often")
    with pytest.raises(OptionError, match="steps_per_label"):
        ALConfig(min_steps=500, max_steps=100)


def _spy_on_training(monkeypatch, heldout_masks):
    """Record each round training's validation images and initial weights; the held-out masks
    are moved away while a model trains, so reading one fails."""
    import crackal.active.segmentation_round as rounds
    from crackal.training import trainer

    seen: dict[str, list] = {"val": [], "initial": []}
    real_train, real_init = rounds.train, trainer.SegmentationRunner.__init__

    def train(train_set, val_set, *args, **kwargs):
        seen["val"].append([p.mask for p in val_set.pairs] if val_set is not None else [])
        for path in heldout_masks:
            path.rename(path.with_name(path.name + ".away"))
        try:
            return real_train(train_set, val_set, *args, **kwargs)
        finally:
            for path in heldout_masks:
                path.with_name(path.name + ".away").rename(path)

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        seen["initial"].append({k: v.clone() for k, v in self.model.state_dict().items()})

    monkeypatch.setattr(rounds, "train", train)
    monkeypatch.setattr(trainer.SegmentationRunner, "__init__", init)
    return seen


def test_auto_rounds_validate_on_labelled_images_only(tmp_path, al_data, monkeypatch):
    from crackal.active.loop import run_round
    from crackal.active.store import ProjectStore
    from tests.active.conftest import make_project

    project = make_project(tmp_path / "p", al_data, round_steps="auto", steps_per_label=1, min_steps=4, max_steps=8,
                           val_share=0.5, val_min=2, patience=1, stop_set_size=0,
                           strategy="random", base_channels=4)
    store = ProjectStore(project)
    heldout_masks = [r.truth_path for r in store.heldout()]
    store.close()
    seen = _spy_on_training(monkeypatch, heldout_masks)
    result = run_round(project)
    store = ProjectStore(project)
    labels = {r.label_path for r in store.labelled()}
    store.close()
    assert len(seen["val"][0]) == 2 and set(seen["val"][0]) <= labels  # half of the 4 labels, none held out
    assert result.metrics["training"]["validation_images"] == 2
    assert result.metrics["strict"]["f1"] >= 0  # the held-out set is read after training, to measure


@pytest.mark.parametrize("warm", [True, False])
def test_warm_start_begins_from_the_previous_best_weights(tmp_path, al_data, monkeypatch, warm):
    from crackal.active.loop import run_round
    from tests.active.conftest import make_project

    project = make_project(tmp_path / "p", al_data, warm_start=warm, stop_set_size=0, strategy="random", base_channels=4,
                           samples_per_epoch=4)
    seen = _spy_on_training(monkeypatch, [])
    run_round(project)
    run_round(project)
    best = torch.load(project / "rounds" / "001" / "checkpoints" / "best.pt", weights_only=True)["model"]
    name = next(k for k in best if k.endswith("weight") and best[k].dtype.is_floating_point)
    same = torch.equal(seen["initial"][1][name], best[name])
    assert same == warm


def test_the_validation_slice_holds_defects_and_leaves_as_many_to_train_on(tmp_path):
    from crackal.active.config import ALConfig
    from crackal.active.segmentation_round import validation_slice
    from crackal.active.store import ImageRecord

    def records(free: int, cracked: int) -> list[ImageRecord]:
        shares = [0.0] * free + [0.02] * cracked
        return [ImageRecord(i, f"im{i}", tmp_path / f"im{i}.png", "pool", None, tmp_path / f"m{i}.png", 0, None, s)
                for i, s in enumerate(shares)]

    config = ALConfig(round_steps="auto", val_share=0.2, val_min=2)
    training, validation = validation_slice(records(10, 10), config, round_=3)
    assert len(validation) == 4 and all(r.defect_share > 0 for r in validation)  # 20 % of 20, defect images only
    assert sorted(r.id for r in training + validation) == list(range(20))
    assert validation_slice(records(14, 6), config, 3)[1] == []  # 6 defect images: 4 aside would leave 2 to train on
    assert validation_slice(records(10, 10), ALConfig(val_share=0.2), 3)[1] == []  # fixed recipe: no slice


def test_changing_the_model_in_the_settings_gives_it_its_own_automatic_weights():
    default = ALConfig()
    assert (default.train.arch, default.train.encoder_weights) == ("smp_unet", "imagenet")
    compact = default.with_settings(["train.arch=unet"])  # 'al config --set' or 'al init --set'
    assert compact.train.encoder_weights is None and compact.train.input_norm is None
    back = compact.with_settings(["train.arch=smp_unet"])
    assert back.train.encoder_weights == "imagenet" and back.train.input_norm == [0.5, 0.5]
    kept = default.with_settings(["train.encoder_weights=runs/pre/encoder.pt", "train.arch=fpn"])  # what is given stays
    assert kept.train.encoder_weights == "runs/pre/encoder.pt" and kept.train.input_norm == [0.5, 0.5]
    with pytest.raises(CrackalError, match="needs an smp architecture"):
        default.with_settings(["train.arch=unet", "train.encoder_weights=imagenet"])


def test_a_round_with_a_validation_slice_trains_all_its_epochs_by_default():
    config = ALConfig(round_steps="auto")
    assert config.validation_count(80) == 8
    recipe = config.segmentation_config(5, 0, labelled=80, train_images=72)
    assert recipe.patience is None  # stopping on 8 images halted rounds at half their learning rate
    assert config.with_settings(["train.patience=5"]).segmentation_config(5, 0, 80, 72).patience == 5
