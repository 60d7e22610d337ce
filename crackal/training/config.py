"""Everything that defines a training run, saved as ``config.json`` in the run folder."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from crackal.errors import CrackalError
from crackal.losses import FLOW_TERMS, WEIGHTINGS, parse_loss
from crackal.models import ARCHS, check_downscale

BALANCES = ("none", "undersample", "prf")


class SavedConfig:
    """JSON round trip of a config dataclass (unknown keys in a saved file are ignored)."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1))


def raise_first_failed(checks: list[tuple[bool, str]]) -> None:
    for ok, message in checks:
        if not ok:
            raise CrackalError(message)


@dataclass
class TrainConfig(SavedConfig):
    """Model, data and optimisation options of one training run.

    ``samples_per_epoch`` random crops make an epoch (default: one per training image).
    ``time_limit_min`` stops training early (keeping the best checkpoint) when reached.
    ``ema_decay`` (e.g. 0.995) validates and keeps an exponential moving average of the weights.
    ``balance`` handles rare defect pixels: ``none`` (uniform random crops), ``undersample``
    (background-only crops kept with probability ``background_keep``), or ``prf`` (the
    precision-recall flow moves the share of crops with defects, starting at
    ``positive_share``, and the defect loss weight every ``balance_interval`` steps; default
    once per epoch; see ``crackal.training.balance``), read on the validation split plus
    ``monitor_train`` training images (a larger monitor reads more like new images).
    ``tile_filter`` (a square size, e.g. 64; 0 = off) trains the two-stage crack / no-crack
    filter alongside the segmentation.
    ``downscale`` (2, 4, 8) runs the network on images shrunk that many times (crops are cut
    at full resolution, so raise ``crop_size`` with it) for large defects in big images.
    """

    arch: str = "unet"
    encoder: str = "resnet18"
    base_channels: int = 16
    depth: int = 4
    dropout: float = 0.2
    tile_filter: int = 0
    downscale: int = 1
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
    positive_share: float = 0.5
    background_keep: float = 0.25
    balance_interval: int | None = None
    monitor_train: int = 0
    tile_size: int = 512
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    time_limit_min: float | None = None

    def __post_init__(self) -> None:
        check_downscale(self.downscale, "--downscale")
        checks = [
            (self.arch in ARCHS, f"unknown --arch {self.arch!r}; choose one of {', '.join(ARCHS)}"),
            (self.arch != "siamese_unet", "siamese_unet takes image pairs: train it with 'crackal change al' (crackal.change)"),
            (self.class_weighting in WEIGHTINGS, f"unknown --class-weighting {self.class_weighting!r}; choose one of {', '.join(WEIGHTINGS)}"),
            (self.epochs >= 1, f"--epochs must be at least 1, got {self.epochs}"),
            (self.val_interval >= 1, f"--val-interval must be at least 1 epoch, got {self.val_interval}"),
            (self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}"),
            (self.crop_size >= 32 and self.crop_size % 32 == 0, f"--crop-size must be a multiple of 32 (>= 32), got {self.crop_size}"),
            (self.lr > 0, f"--lr must be positive, got {self.lr}"),
            (self.ema_decay is None or 0 < self.ema_decay < 1, f"--ema-decay must be in (0, 1), got {self.ema_decay}"),
            (self.balance in BALANCES, f"unknown --balance {self.balance!r}; choose one of {', '.join(BALANCES)}"),
            (0 <= self.positive_share <= 1, f"--positive-share must be in [0, 1], got {self.positive_share}"),
            (0 < self.background_keep <= 1, f"--background-keep must be in (0, 1], got {self.background_keep}"),
            (self.tile_filter == 0 or self.tile_filter >= 16, f"--tile-filter is a square size of at least 16 px (0 = off), got {self.tile_filter}"),
            (self.balance_interval is None or self.balance_interval >= 1, "--balance-interval must be at least 1 step"),
            (self.monitor_train >= 0, f"--monitor-train must be 0 or more training images, got {self.monitor_train}"),
            (self.balance != "prf" or any(t in FLOW_TERMS for t in parse_loss(self.loss)),
             f"--balance prf steers the defect weight of ce, focal or dice, but --loss {self.loss} has none of them"),
            (len(self.class_names) >= 2, "at least two classes (background first) are needed"),
            (self.class_colors is None or len(self.class_colors) == len(self.class_names), "give one colour per class"),
            (self.device in ("auto", "cpu") or self.device.startswith("cuda"), f"--device must be auto, cpu or cuda[:N], got {self.device!r}"),
        ]
        raise_first_failed(checks)
        parse_loss(self.loss)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def model_kwargs(self) -> dict:
        """Arguments of ``create_model`` that rebuild this run's network."""
        return {
            "arch": self.arch,
            "num_classes": self.num_classes,
            "dropout": self.dropout,
            "base_channels": self.base_channels,
            "depth": self.depth,
            "encoder": self.encoder,
            "tile_filter": self.tile_filter,
            "downscale": self.downscale,
        }
