"""A patch classifier's settings (``ClassifyConfig``, saved with its run) and loading a run's
model; what training, evaluation, prediction and the ONNX export share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from crackal.errors import CrackalError, choose
from crackal.models.patch_classifier import PatchClassifier, pretrained_patch_classifier
from crackal.options import IMAGENET_BACKBONES
from crackal.runs.checkpoint import read_checkpoint
from crackal.runs.config import SavedConfig

PATCH_BACKBONES = ("small", *IMAGENET_BACKBONES)


@dataclass
class ClassifyConfig(SavedConfig):
    """Patches are resized to ``size`` (the classifier's input); ``backbone`` ``small`` is the
    ``PatchClassifier`` whose conv-BN-ReLU blocks have ``widths`` (each halves the size), from
    scratch; ``lite0`` is EfficientNet-Lite0 from its ImageNet weights (``pretrained_patch_classifier``).
    AdamW with warm-up and cosine decay."""

    size: int = 64
    backbone: str = "small"
    widths: list[int] = field(default_factory=lambda: [16, 32, 64, 64])
    class_names: list[str] = field(default_factory=lambda: ["no_crack", "crack"])
    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    seed: int = 0
    threads: int | None = None

    def __post_init__(self) -> None:
        choose(PATCH_BACKBONES, self.backbone, "backbone")
        if self.backbone == "small" and self.size < 2 ** len(self.widths):
            raise CrackalError(f"--size {self.size} is too small for {len(self.widths)} pooling blocks; "
                               f"use at least {2 ** len(self.widths)}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise CrackalError("--epochs and --batch-size must be at least 1 and --lr positive")

    def build(self, pretrained: bool = True) -> nn.Module:
        """A new classifier for these classes (``pretrained=False``: no ImageNet weights, to load a checkpoint into)."""
        if self.backbone == "small":
            return PatchClassifier(len(self.class_names), tuple(self.widths))
        return pretrained_patch_classifier(len(self.class_names), IMAGENET_BACKBONES[self.backbone], imagenet=pretrained)


def load_classifier(run: str | Path) -> tuple[nn.Module, ClassifyConfig]:
    """The best classifier of a run folder (or a checkpoint file), in eval mode, and its config."""
    state = read_checkpoint(run)
    config = ClassifyConfig.from_dict(state["config"])
    model = config.build(pretrained=False)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError:
        raise CrackalError(f"{run} is not a patch-classifier checkpoint; pass a run folder made by 'crackal classify train'") from None
    return model.eval(), config
