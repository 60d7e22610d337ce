"""Training a Siamese change-detection model on in-memory tiles, and predicting change maps.

Tiles are small (e.g. 32-64 px) and fit in memory, so training draws random batches of them
directly (flips and 90-degree rotations, the same for both dates and the mask) for a fixed
number of steps; the loss and its class weights are crackal's segmentation loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np
import torch
from torch import nn

from crackal.data.bitemporal import TileSet
from crackal.data.transforms import to_tensor
from crackal.errors import CrackalError
from crackal.losses import SegmentationLoss, class_weights, parse_loss
from crackal.models import create_model
from crackal.models.outputs import class_probabilities
from crackal.options import Weighting
from crackal.runs.config import SavedConfig


@dataclass
class ChangeTrainConfig(SavedConfig):
    """The Siamese U-Net's size and its training budget: at least ``steps`` batches and at
    least ``epochs`` passes over the tiles, at most ``max_steps`` batches."""

    base_channels: int = 8
    depth: int = 3
    steps: int = 100
    epochs: float = 8.0
    max_steps: int = 400
    batch_size: int = 16
    lr: float = 3e-3
    loss: str = "ce+dice"
    class_weighting: str = "sqrt_inverse"

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise CrackalError(f"--steps and --batch-size must be at least 1, got {self.steps}, {self.batch_size}")
        parse_loss(self.loss)

    def steps_for(self, tiles: int) -> int:
        """Training steps for a labelled set of ``tiles`` tiles."""
        return int(min(self.max_steps, max(self.steps, np.ceil(self.epochs * tiles / self.batch_size))))


def build_change_model(config: ChangeTrainConfig) -> nn.Module:
    """A new Siamese U-Net (2 classes, no dropout) of ``config``'s width and depth."""
    return create_model("siamese_unet", 2, base_channels=config.base_channels, depth=config.depth, dropout=0.0)


def tensors(images: np.ndarray) -> torch.Tensor:
    """``(N, h, w, 6) uint8`` tiles -> the normalised ``(N, 6, h, w)`` model input."""
    return torch.stack([to_tensor(image) for image in images])


def _augment(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One random flip / rot90 per batch, applied alike to both dates and the mask."""
    k, flip = torch.randint(0, 4, (2,), generator=generator).tolist()
    x, y = torch.rot90(x, k, (-2, -1)), torch.rot90(y, k, (-2, -1))
    if flip % 2:
        x, y = x.flip(-1), y.flip(-1)
    return x, y


def train_change_model(tiles: TileSet, config: ChangeTrainConfig, seed: int = 0) -> nn.Module:
    """A Siamese U-Net trained from scratch on ``tiles`` (with ``seed``); returned in eval mode."""
    from crackal.training.fit import WarmupCosine

    if not len(tiles):
        raise CrackalError("no labelled tiles to train on")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = build_change_model(config)
    inputs, masks = tensors(tiles.images), torch.from_numpy(tiles.masks.astype(np.int64))
    counts = np.bincount(tiles.masks.reshape(-1), minlength=2)[:2]
    loss_fn = SegmentationLoss(config.loss, class_weights(counts, cast(Weighting, config.class_weighting)))  # checked there
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    steps = config.steps_for(len(tiles))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(max(1, steps // 10), steps))
    model.train()
    for _ in range(steps):
        pick = torch.randint(0, len(tiles), (config.batch_size,), generator=generator)
        x, y = _augment(inputs[pick], masks[pick], generator)
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    return model.eval()


@torch.inference_mode()
def predict_change(models: nn.Module | list[nn.Module], images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Change probability ``(N, h, w) float32`` of each tile; a list of models is averaged (an ensemble)."""
    models = models if isinstance(models, list) else [models]
    out = []
    for start in range(0, len(images), batch_size):
        x = tensors(images[start : start + batch_size])
        probs = sum((class_probabilities(m.eval()(x))[:, 1] for m in models), torch.zeros(())) / len(models)
        out.append(probs.numpy())
    return np.concatenate(out).astype(np.float32)
