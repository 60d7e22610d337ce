"""Self-supervised pre-training of a segmentation model's encoder on unlabelled road images
(``crackal pretrain``), without downloading anything.

Masked-image reconstruction: random ``patch`` x ``patch`` squares of each crop (a share
``mask_ratio`` of them) are blanked, the encoder (the compact U-Net's ``down``, or an smp
architecture's encoder, which may start from its ImageNet weights) reads the rest and a light
decoder (two convolutions and a pixel shuffle from the bottleneck) predicts the pixels; the
loss is the mean squared error on the blanked squares only. The encoder's state dict is saved
as ``encoder.pt``: ``crackal train --encoder-weights OUT/encoder.pt`` (same ``--arch`` and
``--encoder``, or ``--depth`` and ``--base-channels``) starts from it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from crackal.data.io import read_image
from crackal.data.transforms import augment_transform, to_tensor
from crackal.errors import CrackalError, check_options
from crackal.models import create_model
from crackal.models.segmenter import Segmenter
from crackal.models.unet import encode
from crackal.options import (
    AUTO,
    DEFAULT_ARCH,
    DEFAULT_ENCODER,
    MAX_DEPTH,
    Arch,
    check_model_options,
    norm_pair,
    resolve_encoder_weights,
    resolve_input_norm,
)
from crackal.progress import Progress
from crackal.runs.checkpoint import atomic_save, atomic_write_json
from crackal.runs.config import SavedConfig, check_device


@dataclass
class PretrainConfig(SavedConfig):
    """Options of a pre-training run (saved as ``pretrain.json``); the encoder is that of
    ``create_model(arch, encoder=..., encoder_weights=...)``: the compact U-Net's of that ``depth``
    and ``base_channels``, or an smp encoder (default: the default model's, from its ImageNet
    weights; ``encoder_weights`` as in ``TrainConfig``). ``time_limit_min`` stops after the epoch that reaches it."""

    arch: str = DEFAULT_ARCH
    encoder: str = DEFAULT_ENCODER
    encoder_weights: str | None = AUTO
    input_norm: list[float] | str | None = AUTO
    epochs: int = 20
    crop_size: int = 256
    batch_size: int = 8
    samples_per_epoch: int | None = None
    base_channels: int = 16
    depth: int = 4
    patch: int = 16
    mask_ratio: float = 0.6
    lr: float = 1e-3
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    time_limit_min: float | None = None

    def __post_init__(self) -> None:
        check_device(self.device)
        self.encoder_weights = resolve_encoder_weights(self.arch, self.encoder, self.encoder_weights)
        self.input_norm = resolve_input_norm(self.arch, self.encoder, self.input_norm)
        check_model_options(self.arch, base_channels=self.base_channels, depth=self.depth, encoder=self.encoder,
                            encoder_weights=self.encoder_weights)
        check_options([
            (self.arch not in ("siamese_unet",), "arch", "siamese_unet takes image pairs; pre-train unet or an smp architecture"),
            (self.time_limit_min is None or self.time_limit_min > 0, "time_limit_min", f"must be positive, got {self.time_limit_min}"),
            (self.epochs >= 1, "epochs", f"must be at least 1, got {self.epochs}"),
            (self.batch_size >= 1, "batch_size", f"must be at least 1, got {self.batch_size}"),
            (1 <= self.depth <= MAX_DEPTH, "depth", f"must be between 1 and {MAX_DEPTH} poolings, got {self.depth}"),
            (self.base_channels >= 1, "base_channels", f"must be at least 1, got {self.base_channels}"),
            (self.crop_size % self.stride == 0 and self.crop_size % self.patch == 0, "crop_size",
             f"must be a multiple of the encoder's stride ({self.stride}) and of the patch ({self.patch}), got {self.crop_size}"),
            (self.patch >= 1, "patch", f"must be at least 1 px, got {self.patch}"),
            (0 < self.mask_ratio < 1, "mask_ratio", f"must be in (0, 1), got {self.mask_ratio}"),
            (self.lr > 0, "lr", f"must be positive, got {self.lr}"),
            (self.samples_per_epoch is None or self.samples_per_epoch >= 1, "samples_per_epoch", "must be at least 1"),
        ])


    @property
    def stride(self) -> int:
        """How many times the encoder's bottleneck is smaller than its input."""
        return 2**self.depth if self.arch == "unet" else 32


class MaskedReconstruction(nn.Module):
    """A segmentation model's encoder and a light pixel decoder from its bottleneck: the compact
    U-Net's ``down`` (``arch="unet"``) or an smp architecture's ``encoder`` (see ``PretrainConfig``)."""

    def __init__(self, base_channels: int = 16, depth: int = 4, arch: str = "unet", encoder: str = "resnet18",
                 encoder_weights: str | None = None, norm: tuple[float, float] | None = None) -> None:
        super().__init__()
        model = cast(Segmenter, create_model(cast(Arch, arch), 2, base_channels=base_channels, depth=depth, encoder=encoder,
                                              encoder_weights=encoder_weights, norm=norm))
        self.input_norm = model.input_norm
        if arch == "unet":
            self.down = cast(nn.ModuleList, model.trunk.get_submodule("down"))
            width, scale = base_channels * 2**depth, 2**depth
        else:
            self.encoder = model.trunk.get_submodule("encoder")
            width, scale = cast(list[int], self.encoder.out_channels)[-1], cast(int, self.encoder.output_stride)
        self.decoder = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(inplace=True),
                                     nn.Conv2d(width, 3 * scale**2, 1), nn.PixelShuffle(scale))

    def encoded(self) -> nn.Module:
        """The encoder whose state dict ``encoder.pt`` holds."""
        return self.down if hasattr(self, "down") else self.encoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstructed pixels ``(N, 3, H, W)`` (normalised) of ``(N, 3, H, W)``."""
        x = self.input_norm(x)
        bottleneck = encode(self.down, x)[-1] if hasattr(self, "down") else self.encoder(x)[-1]
        return self.decoder(bottleneck)


def patch_mask(shape: tuple[int, ...], patch: int, ratio: float, generator: torch.Generator) -> torch.Tensor:
    """``(N, 1, H, W)`` float mask, 1 on a random share ``ratio`` of the ``patch`` squares."""
    n, _, h, w = shape
    grid = (torch.rand(n, 1, h // patch, w // patch, generator=generator) < ratio).float()
    return F.interpolate(grid, scale_factor=patch, mode="nearest")


def reconstruction_loss(model: MaskedReconstruction, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the reconstruction on the masked pixels (masked input set to 0, the mean)."""
    mask = mask.to(images.device)
    error = (model(images * (1 - mask)) - images) ** 2
    return (error * mask).sum() / (3 * mask.sum()).clamp(min=1)


class RandomCrops(Dataset):
    """Augmented random ``size`` crops of images (loaded once, reflect-padded when smaller)."""

    def __init__(self, paths: list[Path], size: int, seed: int) -> None:
        import cv2

        self.images = []
        for path in paths:
            image = read_image(path)
            bottom, right = max(0, size - image.shape[0]), max(0, size - image.shape[1])
            self.images.append(cv2.copyMakeBorder(image, 0, bottom, 0, right, cv2.BORDER_REFLECT_101) if bottom or right else image)
        self.size, self.augment = size, augment_transform()
        self.set_seed(seed)

    def set_seed(self, seed: int) -> None:
        """Restart the crop positions and the augmentation from ``seed``."""
        self.rng = np.random.default_rng(seed)
        self.augment.set_random_seed(seed)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> torch.Tensor:
        image = self.images[index]
        top = int(self.rng.integers(image.shape[0] - self.size + 1))
        left = int(self.rng.integers(image.shape[1] - self.size + 1))
        return to_tensor(self.augment(image=image[top : top + self.size, left : left + self.size])["image"])


def pretrain_encoder(paths: list[Path], out: str | Path, config: PretrainConfig, progress: bool | Progress = True) -> dict:
    """Pre-train the encoder on ``paths`` into ``out``: ``encoder.pt`` (the encoder's state dict),
    ``model.pt`` (encoder and decoder), ``pretrain.json`` and ``metrics.json`` (loss per epoch).
    Returns the metrics."""
    from crackal.training.fit import resolve_device, seed_everything

    if not paths:
        raise CrackalError("no images to pre-train on; give a folder of road images (jpg, png, tif)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config.save(out / "pretrain.json")
    device = resolve_device(config.device)
    if config.threads:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    progress = Progress.of(progress)
    crops = RandomCrops(paths, config.crop_size, config.seed)
    model = MaskedReconstruction(config.base_channels, config.depth, config.arch, config.encoder, config.encoder_weights,
                                 norm_pair(config.input_norm)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    samples = config.samples_per_epoch or len(crops)
    generator = torch.Generator().manual_seed(config.seed)
    history, started = [], time.perf_counter()
    for epoch in range(config.epochs):
        crops.set_seed(config.seed * 100_003 + epoch)
        order = torch.randint(len(crops), (samples,), generator=generator).tolist()
        loader = DataLoader(crops, batch_size=min(config.batch_size, samples), sampler=order)
        model.train()
        losses = []
        for batch in progress.bar(loader, desc=f"pretrain {epoch + 1}/{config.epochs}", unit="batches", detail=True):
            batch = batch.to(device)
            loss = reconstruction_loss(model, batch, patch_mask(batch.shape, config.patch, config.mask_ratio, generator))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        history.append({"epoch": epoch + 1, "loss": float(np.mean(losses)), "seconds": round(time.perf_counter() - started, 2)})
        progress.line(f"pretrain epoch {epoch + 1}/{config.epochs}: masked reconstruction loss {history[-1]['loss']:.4f}", detail=True)
        if config.time_limit_min and time.perf_counter() - started > 60 * config.time_limit_min:
            progress.line(f"time limit of {config.time_limit_min} min reached after epoch {epoch + 1}")
            break
    atomic_save(model.encoded().state_dict(), out / "encoder.pt")
    atomic_save(model.state_dict(), out / "model.pt")
    metrics = {"protocol": "mean squared error of the normalised pixels on the masked patches, mean over the epoch's batches",
               "history": history, "images": len(paths)}
    atomic_write_json(metrics, out / "metrics.json")
    return metrics
