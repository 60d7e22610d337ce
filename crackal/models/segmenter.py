"""The model shape every crackal segmentation network shares: trunk -> Dropout2d -> last conv.

Keeping the stochastic layer and the last convolution apart (``features`` then ``head``) lets
MC-Dropout run the deterministic trunk once and sample only the head.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn
from torch.nn import functional as F


class Segmenter(nn.Module):
    """``trunk`` (any network) -> ``Dropout2d(p)`` -> ``classifier`` conv -> optional upsampling.

    ``forward`` pads the input (reflect) to a multiple of ``stride`` and crops the logits back,
    so any image size works. ``out_channels`` is 1 for binary tasks (a sigmoid channel) and the
    number of classes otherwise (softmax). ``downscale`` d > 1 runs the trunk on the input
    shrunk d times (area average) and upsamples the logits back (bilinear): d x d more context
    per output pixel at 1/d^2 of the cost, for large defects in high-resolution images.
    ``input_norm`` maps crackal's normalised input to the one a pretrained trunk expects
    (``crackal.models.pretrained.InputNorm``), so every caller feeds the same tensors.
    """

    def __init__(
        self,
        trunk: nn.Module,
        classifier: nn.Conv2d,
        dropout: float,
        stride: int,
        upsample: nn.Module | None = None,
        downscale: int = 1,
        input_norm: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.input_norm = input_norm if input_norm is not None else nn.Identity()
        self.trunk = trunk
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = classifier
        self.upsample = upsample if upsample is not None else nn.Identity()
        if downscale > 1:
            self.upsample = nn.Sequential(self.upsample, nn.Upsample(scale_factor=downscale, mode="bilinear"))
        self.downscale = downscale
        self.stride = stride * downscale

    @property
    def context(self) -> int:
        """How many times larger the context window of a two-scale trunk is (1: one scale); such a
        trunk takes the crop and its context stacked, ``(N, 6, H, W)`` (see ``models.context``)."""
        return getattr(self.trunk, "context", 1)

    @property
    def out_channels(self) -> int:
        """Channels of the logits: 1 for a binary task (sigmoid), else the number of classes."""
        return self.classifier.out_channels

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic trunk output for an input already padded to a multiple of ``stride``."""
        x = self.input_norm(x)
        return self.trunk(F.avg_pool2d(x, self.downscale) if self.downscale > 1 else x)

    def head(self, features: torch.Tensor) -> torch.Tensor:
        """Dropout, last convolution and upsampling: the only stochastic part of the model."""
        return self.upsample(self.classifier(self.dropout(features)))

    def pad(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """Reflect-pad ``x`` to a multiple of ``stride``; returns it and the original size."""
        h, w = x.shape[-2:]
        ph, pw = -h % self.stride, -w % self.stride
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        return x, (h, w)

    def forward(self, x: torch.Tensor, own_scale: bool = False) -> torch.Tensor:
        """Logits ``(N, out_channels, H, W)`` for a normalised batch ``(N, C_in, H, W)`` of any size;
        with ``own_scale`` those of a ``downscale`` d network stay at its own scale, ``(H / d, W / d)``
        (its training loss is computed there: no full-size logits to upsample and score)."""
        x, (h, w) = self.pad(x)
        if own_scale and self.downscale > 1:
            base_upsample = cast(nn.Sequential, self.upsample)[0]  # the architecture's own, before the downscale's
            logits = base_upsample(self.classifier(self.dropout(self.features(x))))
            return logits[..., : h // self.downscale, : w // self.downscale]
        return self.head(self.features(x))[..., :h, :w]
