"""Cutting a labelled dataset into non-overlapping tiles (an active-learning pool of tiles)."""

from __future__ import annotations

from pathlib import Path

from crackal.data.io import mask_png, write_png
from crackal.data.layout import Pair, load_pair


def write_tiles(pairs: list[Pair], out: str | Path, tile: int, num_classes: int, binarize: bool = False) -> list[Pair]:
    """Write every full ``tile x tile`` tile of each pair to ``out/images`` and ``out/masks``
    (``<name>_r<row>_c<col>.png``); the remainder at the right and bottom edges is dropped."""
    out = Path(out)
    tiles = []
    for pair in pairs:
        image, mask = load_pair(pair, num_classes, binarize)
        for row in range(image.shape[0] // tile):
            for col in range(image.shape[1] // tile):
                window = (slice(row * tile, (row + 1) * tile), slice(col * tile, (col + 1) * tile))
                name = f"{pair.name}_r{row}_c{col}.png"
                write_png(out / "images" / name, image[window])
                write_png(out / "masks" / name, mask_png(mask[window], num_classes))
                tiles.append(Pair(out / "images" / name, out / "masks" / name))
    return tiles
