"""Cutting a large image into overlapping tiles and blending the tile outputs back."""

from __future__ import annotations

import numpy as np


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets covering ``[0, length)`` with tiles of ``tile`` px overlapping by at least ``overlap``.

    >>> tile_starts(1000, 512, 64)
    [0, 244, 488]
    >>> tile_starts(300, 512, 64)
    [0]
    """
    if length <= tile:
        return [0]
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile), got {overlap} for tile {tile}")
    step = tile - overlap
    count = int(np.ceil((length - tile) / step)) + 1
    return np.linspace(0, length - tile, count).round().astype(int).tolist()


def tile_boxes(height: int, width: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """``(top, left, bottom, right)`` boxes of the tiles that cover an image."""
    return [
        (top, left, min(top + tile, height), min(left + tile, width))
        for top in tile_starts(height, tile, overlap)
        for left in tile_starts(width, tile, overlap)
    ]


def blend_window(height: int, width: int, overlap: int) -> np.ndarray:
    """Weights ``(H, W)`` that fall linearly to near 0 over ``overlap`` px at each border.

    Tiles blended with these weights join without seams; a single tile covering the
    whole image gets the same normalised result as no tiling.
    """

    def ramp(n: int) -> np.ndarray:
        r = np.ones(n, np.float32)
        m = min(overlap, n // 2)
        if m > 0:
            edge = (np.arange(m, dtype=np.float32) + 0.5) / m
            r[:m], r[n - m :] = edge, edge[::-1]
        return r

    return np.outer(ramp(height), ramp(width))


class TileBlender:
    """Accumulates weighted tile outputs ``(C, h, w)`` into a full ``(C, H, W)`` map."""

    def __init__(self, channels: int, height: int, width: int) -> None:
        self.sum = np.zeros((channels, height, width), np.float32)
        self.weight = np.zeros((height, width), np.float32)

    def add(self, values: np.ndarray, box: tuple[int, int, int, int], overlap: int) -> None:
        """Add a tile's outputs ``(C, h, w)`` at ``box`` ``(top, left, bottom, right)``, weighted by
        ``blend_window``."""
        top, left, bottom, right = box
        w = blend_window(bottom - top, right - left, overlap)
        self.sum[:, top:bottom, left:right] += values * w
        self.weight[top:bottom, left:right] += w

    def result(self) -> np.ndarray:
        """The blended map ``(C, H, W)``: at each pixel, the weighted mean of the tiles covering it."""
        return self.sum / np.maximum(self.weight, 1e-8)
