"""A two-scale compact U-Net (``--context 2`` or ``4``): each crop is read at full resolution and
together with a context window ``context`` times larger around the same centre, shrunk to the
crop's size, for large defects (potholes, patches, alligator cracking) that a crop sees only
in part.

The input stacks the crop and its context: ``(N, 6, H, W)``, channels 3-5 being the window of
``crackal.data.context.context_window`` (training crops and ``predict_image``'s tiles take it
from the image around them). A plain ``(N, 3, H, W)`` input also works: the context is then
made from the input itself, mirrored beyond its border (``self_context``): the path pool
scoring takes (MC-Dropout, MC-BatchNorm), with less context than the whole image gives. No
ONNX export yet.

A small second encoder (half the width) reads the context; at the bottleneck its features over
the crop's area (upsampled) and their mean over the whole window are concatenated to the
crop's and merged by a 1x1 convolution; the decoder is the U-Net's.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from crackal.models.unet import UNetTrunk, encode


def self_context(x: torch.Tensor, context: int) -> torch.Tensor:
    """The context window of a whole input ``(N, C, H, W)``, mirrored beyond its border, shrunk
    back to ``H x W`` (area average)."""
    h, w = x.shape[-2:]
    pad_h, pad_w = (context - 1) * h // 2, (context - 1) * w // 2
    after_h, after_w = context * h - h - pad_h, context * w - w - pad_w
    while pad_h or pad_w or after_h or after_w:  # reflect padding is limited to the current size - 1
        size_h, size_w = x.shape[-2] - 1, x.shape[-1] - 1
        step = (min(pad_w, size_w), min(after_w, size_w), min(pad_h, size_h), min(after_h, size_h))
        x = F.pad(x, step, mode="reflect")
        pad_w, after_w, pad_h, after_h = pad_w - step[0], after_w - step[1], pad_h - step[2], after_h - step[3]
    return F.interpolate(x, size=(h, w), mode="area")


class ContextUNetTrunk(UNetTrunk):
    """The compact U-Net with a second, context encoder fused at the bottleneck (see the module docstring).

    >>> trunk = ContextUNetTrunk(base_channels=4, depth=2, context=2)
    >>> trunk(torch.zeros(1, 6, 32, 32)).shape, trunk(torch.zeros(1, 3, 32, 32)).shape
    (torch.Size([1, 4, 32, 32]), torch.Size([1, 4, 32, 32]))
    """

    def __init__(self, base_channels: int = 16, depth: int = 4, context: int = 2) -> None:
        super().__init__(3, base_channels, depth)
        self.context = context
        self.context_down = UNetTrunk(3, max(2, base_channels // 2), depth).down
        bottom, context_bottom = base_channels * 2**depth, max(2, base_channels // 2) * 2**depth
        self.merge = nn.Sequential(nn.Conv2d(bottom + 2 * context_bottom, bottom, 1, bias=False), nn.BatchNorm2d(bottom),
                                   nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(N, base_channels, H, W)`` of a crop and its context ``(N, 6, H, W)``, or of a
        crop alone ``(N, 3, H, W)`` (context made from it); H and W divisible by ``2 ** depth``."""
        crop, around = (x[:, :3], x[:, 3:]) if x.shape[1] == 6 else (x, self_context(x, self.context))
        skips = encode(self.down, crop)
        seen = encode(self.context_down, around)[-1]
        h, w = seen.shape[-2:]
        ch, cw = max(1, round(h / self.context)), max(1, round(w / self.context))
        top, left = (h - ch) // 2, (w - cw) // 2
        centre = F.interpolate(seen[..., top : top + ch, left : left + cw], size=(h, w), mode="bilinear", align_corners=False)
        whole = seen.mean(dim=(2, 3), keepdim=True).expand(-1, -1, h, w)
        skips[-1] = self.merge(torch.cat([skips[-1], centre, whole], dim=1))
        return self.decode(skips)
