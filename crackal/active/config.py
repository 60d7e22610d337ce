"""Options of an active-learning project, stored in its database.

``ALConfig`` holds what the loop does each round (acquisition, batch selection, stopping,
costs) and nests the round's training recipe: a ``TrainConfig`` for segmentation projects, a
``DetectionConfig`` for detection projects, so every training option works in active
learning. Projects written before the recipe was nested (flat settings) are migrated when read.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields, replace
from typing import Literal, get_args

from crackal.errors import OptionError, check_options, choose
from crackal.options import DEFAULT_REDUCTION, METHODS, REDUCTION_NAMES, STRATEGIES
from crackal.runs.config import DetectionConfig, SavedConfig, TrainConfig

Task = Literal["segmentation", "detection"]
TASKS: tuple[str, ...] = get_args(Task)
SELECTIONS = ("top", "stochastic", "diverse")
COLD_STARTS = ("random", "coreset")
DETECTION_STRATEGIES = ("disagreement", "random")
DEFAULT_STRATEGY = {"segmentation": "bald", "detection": "disagreement"}

# By default each round trains from scratch with a fixed number of crops (epochs x
# samples_per_epoch), so rounds cost the same whatever the size of the labelled set; with
# ``round_steps="auto"`` the epochs follow the labelled set. A round always trains all its epochs:
# stopping on a slice of 8-10 images halted rounds at half their learning rate (road frames, 80 labels:
# held-out F1 0.155 against 0.203 trained to the end, mean of 6 runs; docs/active-learning.md).
ROUND_TRAINING = {"epochs": 12, "samples_per_epoch": 64, "batch_size": 8, "crop_size": 256, "lr": 3e-3, "warmup_epochs": 0.5}
# A detection round trains for ``epochs`` passes over the labelled images.
ROUND_DETECTION = {"epochs": 12, "batch_size": 8, "head_dropout": 0.2, "warmup_epochs": 0.5}


def round_training(task: str, options: dict | None = None) -> TrainConfig | DetectionConfig:
    """The training recipe of a round: the active-learning defaults above, then ``options``."""
    if choose(TASKS, task, "task") == "detection":
        return DetectionConfig.from_options({**ROUND_DETECTION, **(options or {})}, "train")
    return TrainConfig.from_options({**ROUND_TRAINING, **(options or {})}, "train")


@dataclass
class ALConfig(SavedConfig):
    """What the loop does each round, and when it stops.

    ``query_size`` images are selected per round (``initial`` before the first); ``train`` is
    the round's training recipe (see ``round_training``). ``selection``: ``top`` scores,
    ``stochastic`` (score^(1/temperature) sampling) or ``diverse`` (the most uncertain image of
    each cluster of the ``diversity_candidates x query_size`` top images' encoder embeddings,
    ``crackal.acquisition.diversity``: no near-duplicate frames in one batch). ``cost_aware``: each
    score is divided by the image's predicted labelling seconds (a model of the measured times on
    the predicted crack length and regions, ``crackal.acquisition.cost``; the constant
    ``seconds_per_image`` until enough labels are timed). ``task="detection"`` trains a
    RetinaNet and scores the pool by the ``disagreement`` of head-dropout samples or of an
    ensemble (see ``crackal.uncertainty.detection``).
    """

    task: str = "segmentation"
    strategy: str | None = None  # default: bald (segmentation), disagreement (detection)
    reduction: str = DEFAULT_REDUCTION
    method: str = "mc_dropout"
    iterations: int = 20
    ensemble_size: int = 3
    selection: str = "top"
    temperature: float = 1.0
    diversity_candidates: int = 4
    query_size: int = 10
    initial: int = 10
    cold_start: str = "random"
    seed: int = 0
    simulation: bool = False
    # stopping
    budget: int | None = None
    patience: int | None = 3  # None: no plateau stopping (simulations compare fixed rounds)
    min_delta: float = 0.005
    min_uncertainty: float | None = None
    # cost model for reports (and the estimate of cost-aware selection before times are measured)
    cost_per_image: float = 0.5
    seconds_per_image: float = 30.0
    cost_aware: bool = False  # score / predicted labelling seconds (segmentation, not random)
    # round schedule (segmentation)
    round_steps: int | str | None = None  # None: the recipe's epochs; an integer; "auto": grows with the labels
    steps_per_label: float = 4.0
    min_steps: int = 96  # the fixed recipe's 12 epochs x 64 crops / 8 per batch
    max_steps: int = 2000
    val_share: float = 0.1
    val_min: int = 8  # a slice of 2-4 images picked checkpoints by noise: below 80 labels, train on all, keep the last
    warm_start: bool = False
    # stabilising predictions (segmentation)
    stop_set_size: int = 50
    stop_kappa: float = 0.99
    stop_rounds: int = 2
    train: TrainConfig | DetectionConfig | None = field(default=None)

    def __post_init__(self) -> None:
        choose(TASKS, self.task, "task")
        if not isinstance(self.train, (TrainConfig, DetectionConfig)):
            self.train = round_training(self.task, self.train)
        self.strategy = self.strategy or DEFAULT_STRATEGY[self.task]
        detection = self.task == "detection"
        choose(DETECTION_STRATEGIES if detection else STRATEGIES, self.strategy, "strategy")
        choose(REDUCTION_NAMES, self.reduction, "reduction")
        choose(METHODS, self.method, "method")
        choose(SELECTIONS, self.selection, "selection")
        choose(COLD_STARTS, self.cold_start, "cold_start")
        if isinstance(self.round_steps, str) and self.round_steps.isdigit():
            self.round_steps = int(self.round_steps)
        check_options([
            (isinstance(self.train, DetectionConfig) == detection, "train",
             f"must be a {'DetectionConfig' if detection else 'TrainConfig'} for a {self.task} project"),
            (not detection or self.method != "mc_batchnorm", "method",
             "mc_batchnorm needs BatchNorm; a detector (GroupNorm) takes mc_dropout or ensemble"),
            (not detection or self.cold_start == "random", "cold_start", "must be random for a detector"),
            (not detection or self.selection != "diverse", "selection", "diverse needs a segmentation model's encoder, not a detector"),
            (isinstance(self.cost_aware, bool), "cost_aware", f"is true or false, got {self.cost_aware!r}"),
            (not self.cost_aware or (not detection and self.strategy != "random"), "cost_aware",
             "needs a segmentation model's predicted masks and an uncertainty strategy (not random, not a detector)"),
            (self.diversity_candidates >= 1, "diversity_candidates", f"must be at least 1, got {self.diversity_candidates}"),
            (self.query_size >= 1, "query_size", f"(images per round) must be at least 1, got {self.query_size}"),
            (self.initial >= 1, "initial", f"must be at least 1, got {self.initial}"),
            (self.iterations >= 2, "iterations", f"must be at least 2, got {self.iterations}"),
            (self.ensemble_size >= 2, "ensemble_size", f"must be at least 2, got {self.ensemble_size}"),
            (self.temperature > 0, "temperature", f"must be > 0, got {self.temperature}"),
            (self.budget is None or self.budget >= 1, "budget", f"must be at least 1 image, got {self.budget}"),
            (self.patience is None or self.patience >= 1, "patience", f"must be at least 1 round, got {self.patience}"),
            (self.min_delta >= 0, "min_delta", f"must be >= 0, got {self.min_delta}"),
            (self.cost_per_image >= 0 and self.seconds_per_image >= 0, "cost_per_image",
             "and seconds_per_image must be >= 0"),
            (self.round_steps in (None, "auto") or (isinstance(self.round_steps, int) and self.round_steps >= 1),
             "round_steps", f"is auto, a number of steps (>= 1) or null for the recipe's epochs; got {self.round_steps!r}"),
            (not detection or (self.round_steps is None and not self.warm_start), "round_steps",
             "and warm_start are for segmentation projects; a detection round trains train.epochs from scratch"),
            (self.steps_per_label > 0 and 1 <= self.min_steps <= self.max_steps, "steps_per_label",
             f"must be > 0 and 1 <= min_steps <= max_steps; got {self.steps_per_label}, {self.min_steps}, {self.max_steps}"),
            (0 < self.val_share < 1 and self.val_min >= 1, "val_share",
             f"must be in (0, 1) and val_min at least 1; got {self.val_share}, {self.val_min}"),
            (self.stop_set_size >= 0, "stop_set_size", f"must be 0 (off) or more images, got {self.stop_set_size}"),
            (-1 <= self.stop_kappa <= 1 and self.stop_rounds >= 1, "stop_kappa",
             f"must be in [-1, 1] and stop_rounds at least 1; got {self.stop_kappa}, {self.stop_rounds}"),
        ])

    @property
    def class_names(self) -> list[str]:
        """The class names of the round's training recipe, background first."""
        return self.train.class_names  # type: ignore[union-attr]

    def round_config(self, round_: int, member: int = 0, labelled: int | None = None,
                     train_images: int | None = None) -> TrainConfig | DetectionConfig:
        """The training config of a round (of one ensemble member): the recipe, seeded for it;
        with ``labelled`` (and the ``train_images`` left after the validation slice) its epochs
        follow ``round_steps``."""
        assert self.train is not None  # __post_init__ made the recipe
        config = replace(self.train, seed=self.seed * 1000 + round_ + 7919 * member)
        steps = None if labelled is None else self.steps_for(labelled)
        if steps is None or labelled is None or not isinstance(config, TrainConfig):
            return config
        samples = config.samples_per_epoch or train_images or labelled
        steps_per_epoch = max(1, samples // min(config.batch_size, samples))  # as SegmentationRunner counts them
        return replace(config, epochs=max(1, math.ceil(steps / steps_per_epoch)))

    def segmentation_config(self, round_: int, member: int = 0, labelled: int | None = None,
                            train_images: int | None = None) -> TrainConfig:
        """``round_config`` of a segmentation project (a ``TrainConfig``)."""
        config = self.round_config(round_, member, labelled, train_images)
        assert isinstance(config, TrainConfig), "a segmentation round's recipe is a TrainConfig"
        return config

    def steps_for(self, labelled: int) -> int | None:
        """Optimiser steps of a round on ``labelled`` images, or None for the recipe's epochs.

        >>> [ALConfig(round_steps="auto").steps_for(n) for n in (10, 100, 1000)]
        [96, 400, 2000]
        """
        if self.round_steps == "auto":
            return int(min(self.max_steps, max(self.min_steps, round(self.steps_per_label * labelled))))
        return self.round_steps if isinstance(self.round_steps, int) else None

    def validation_count(self, labelled: int) -> int:
        """How many labelled images the round keeps aside for validation (0: none).

        >>> [ALConfig(round_steps="auto").validation_count(n) for n in (79, 80, 200)]
        [0, 8, 20]
        """
        if self.round_steps != "auto" or labelled * self.val_share < self.val_min:
            return 0
        return max(self.val_min, round(self.val_share * labelled))

    @classmethod
    def from_dict(cls, data: dict) -> ALConfig:
        """A config from saved settings (older flat settings migrated, unknown keys ignored)."""
        data = migrate_flat_settings(data)
        known = {f.name for f in fields(cls)}
        options = {k: v for k, v in data.items() if k in known}
        task = options.get("task", "segmentation")
        training = DetectionConfig if task == "detection" else TrainConfig
        options["train"] = training.from_dict(options.get("train") or {})
        return cls(**options)

    def with_settings(self, assignments: list[str]) -> ALConfig:
        """A copy with ``KEY=VALUE`` assignments applied (``query_size=20``, ``train.epochs=30``);
        values are JSON (numbers, true/false, null) or plain text. Checked like a new config."""
        data, assigned = self.to_dict(), set()
        for assignment in assignments:
            key, sep, text = assignment.partition("=")
            key = key.strip()
            section, _, name = key.rpartition(".")
            target = data["train"] if section == "train" else data if not section else None
            if not sep or target is None or name not in target or name == "train":
                choices = [k for k in data if k != "train"] + [f"train.{k}" for k in data["train"]]
                raise OptionError("settings", f"take KEY=VALUE with KEY one of {', '.join(choices)}; got {assignment!r}")
            target[name] = _parse_value(text.strip())
            assigned.add(key)
        if data["task"] != self.task:
            raise OptionError("task", "cannot change once a project exists; create a new project")
        if isinstance(self.train, TrainConfig):
            train_assigned = {k.removeprefix("train.") for k in assigned if k.startswith("train.")}
            data["train"] = self.train.automatic_again(data["train"], train_assigned)
        return ALConfig.from_dict(data)


def _parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


# The settings of projects made before the training recipe was nested, and what they became.
_FLAT_TRAINING = ("arch", "base_channels", "depth", "dropout", "epochs", "samples_per_epoch", "batch_size", "crop_size",
                  "downscale", "lr", "loss", "class_weighting", "class_names")
_FLAT_DETECTION = {"backbone": "backbone", "image_size": "image_size", "dropout": "head_dropout", "epochs": "epochs",
                   "batch_size": "batch_size", "class_names": "class_names"}


def migrate_flat_settings(data: dict) -> dict:
    """Settings in the current nested form; flat ones (crackal before the nesting) are moved
    into ``train`` and ``batch`` becomes ``query_size``. A nested dict is returned unchanged.

    >>> migrate_flat_settings({"batch": 5, "epochs": 3, "class_names": ["background", "crack"]})["train"]["epochs"]
    3
    """
    if "train" in data:
        return data
    data = dict(data)
    if "batch" in data:
        data["query_size"] = data.pop("batch")
    if data.get("task") == "detection":
        data["train"] = {**ROUND_DETECTION, **{new: data[old] for old, new in _FLAT_DETECTION.items() if old in data}}
    else:
        data["train"] = {**ROUND_TRAINING, **{key: data[key] for key in _FLAT_TRAINING if key in data}}
    return data
