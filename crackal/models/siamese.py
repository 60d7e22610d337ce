"""A Siamese U-Net for change detection (FC-Siam-conc): one encoder applied to both dates
(shared weights), the two feature maps of each level concatenated, one decoder.

The input is the two co-registered images stacked on the channel axis, ``(N, 6, H, W)``
(date A in channels 0-2, date B in 3-5), so every crackal tool that calls ``model(batch)``
(MC-BatchNorm, ensembles, tiled prediction) works on pairs unchanged.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from crackal.models.unet import conv_block


class SiameseUNetTrunk(nn.Module):
    """Shared encoder -> per-level ``cat(A, B)`` -> U-Net decoder; ``base_channels`` out.

    >>> SiameseUNetTrunk(base_channels=8, depth=2)(torch.zeros(1, 6, 16, 16)).shape
    torch.Size([1, 8, 16, 16])
    """

    def __init__(self, in_channels: int = 3, base_channels: int = 16, depth: int = 4) -> None:
        super().__init__()
        widths = [base_channels * 2**i for i in range(depth + 1)]
        self.in_channels = in_channels
        self.encoder = nn.ModuleList([conv_block(in_channels, widths[0])])
        self.encoder.extend(conv_block(widths[i], widths[i + 1]) for i in range(depth))
        self.bottleneck = conv_block(2 * widths[depth], widths[depth])
        self.up = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(depth)))
        self.fuse = nn.ModuleList(conv_block(3 * widths[i], widths[i]) for i in reversed(range(depth)))
        self.out_channels = base_channels

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps of one date at every level (finest first)."""
        features = []
        for i, block in enumerate(self.encoder):
            x = block(x if i == 0 else F.max_pool2d(x, 2))
            features.append(x)
        return features

    def decode(self, features_a: list[torch.Tensor], features_b: list[torch.Tensor]) -> torch.Tensor:
        """The decoder: the only part that sees which date came first."""
        x = self.bottleneck(torch.cat([features_a[-1], features_b[-1]], 1))
        for level, (up, fuse) in enumerate(zip(self.up, self.fuse)):
            skip = -2 - level
            x = fuse(torch.cat([features_a[skip], features_b[skip], up(x)], 1))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(N, base_channels, H, W)`` of two images stacked on channels,
        ``(N, 2 * in_channels, H, W)`` (before, then after)."""
        a, b = x[:, : self.in_channels], x[:, self.in_channels :]
        if b.shape[1] != self.in_channels:
            raise ValueError(f"a Siamese model takes two stacked images, (N, {2 * self.in_channels}, H, W); got {tuple(x.shape)}")
        both = self.encode(torch.cat([a, b], 0))  # one pass through the shared encoder
        n = a.shape[0]
        return self.decode([f[:n] for f in both], [f[n:] for f in both])


def stack_dates(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(N, 3, H, W)`` before and after -> the ``(N, 6, H, W)`` input of a Siamese model."""
    return torch.cat([a, b], 1)
