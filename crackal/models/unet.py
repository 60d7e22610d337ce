"""A compact U-Net whose last convolution is preceded by ``Dropout2d`` (the MC-Dropout design)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 conv - BatchNorm - ReLU layers."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def encode(down: nn.ModuleList, x: torch.Tensor) -> list[torch.Tensor]:
    """The U-Net encoder ``down`` (conv blocks with 2x max-pooling between them): every level's
    features, full resolution first and the bottleneck last."""
    skips = []
    for i, block in enumerate(down):
        x = block(x if i == 0 else F.max_pool2d(x, 2))
        skips.append(x)
    return skips


class UNetTrunk(nn.Module):
    """Encoder-decoder of a U-Net up to (not including) its classifier.

    Widths double at each of ``depth`` poolings from ``base_channels``; the output has
    ``base_channels`` channels at the input resolution (which must be divisible by
    ``2 ** depth``). ``down`` is the encoder (what ``crackal pretrain`` trains and
    ``encoder_weights`` loads).

    >>> UNetTrunk(base_channels=8, depth=3)(torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 8, 32, 32])
    """

    def __init__(self, in_channels: int = 3, base_channels: int = 16, depth: int = 4) -> None:
        super().__init__()
        widths = [base_channels * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList([conv_block(in_channels, widths[0])])
        self.down.extend(conv_block(widths[i], widths[i + 1]) for i in range(depth))
        self.up = nn.ModuleList(
            nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(depth))
        )
        self.fuse = nn.ModuleList(conv_block(2 * widths[i], widths[i]) for i in reversed(range(depth)))
        self.out_channels = base_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(N, base_channels, H, W)`` of ``(N, in_channels, H, W)``, H and W divisible by
        ``2 ** depth``."""
        return self.decode(encode(self.down, x))

    def decode(self, skips: list[torch.Tensor]) -> torch.Tensor:
        """The decoder: from the encoder's features of every level (bottleneck last) to ``(N, base_channels, H, W)``."""
        skips = list(skips)
        x = skips.pop()
        for up, fuse in zip(self.up, self.fuse):
            x = fuse(torch.cat([skips.pop(), up(x)], dim=1))
        return x
