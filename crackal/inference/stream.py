"""Fast prediction of many images on one machine: reading and decoding ahead in worker threads,
tiles of several images batched together through the network, outputs written behind it.

PIL's decoders and encoders and the network release the GIL, so threads overlap them with the
forward passes without copying images between processes; the queues are bounded, so memory
stays a few images deep whatever the number of images.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np
import torch
from torch import nn

from crackal.data.transforms import to_tensor
from crackal.models.predict import Engine, _forward, tile_input
from crackal.models.tiling import TileBlender, tile_boxes

T = TypeVar("T")
R = TypeVar("R")
K = TypeVar("K")


def default_workers() -> int:
    """Reader / writer threads: 2, or 1 on a single CPU."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 2 if cpus > 1 else 1


def ahead(fn: Callable[[T], R], items: Iterable[T], pool: ThreadPoolExecutor, depth: int) -> Iterator[tuple[T, Future]]:
    """``(item, future of fn(item))`` in order, with at most ``depth`` calls submitted ahead."""
    pending: deque[tuple[T, Future]] = deque()
    for item in items:
        pending.append((item, pool.submit(fn, item)))
        if len(pending) > depth:
            yield pending.popleft()
    while pending:
        yield pending.popleft()


@dataclass
class _Image(Generic[K]):
    key: K
    image: np.ndarray
    boxes: list[tuple[int, int, int, int]]
    left: int
    probs: np.ndarray | None = None
    blender: TileBlender | None = None


def predict_stream(
    model: nn.Module | Engine,
    images: Iterable[tuple[K, np.ndarray]],
    tile_size: int,
    overlap: int = 64,
    tta: bool = False,
    batch_size: int = 4,
) -> Iterator[tuple[K, np.ndarray, np.ndarray]]:
    """``(key, image, probabilities (C, H, W))`` for each ``(key, image)``, in order: what
    ``predict_image`` gives for each image, with the tiles (or whole small images) of consecutive
    images of the same size going through the network ``batch_size`` at a time."""
    forward = _forward(model)
    context = getattr(model, "context", 1)  # a two-scale model: each tile with its context (see predict_image)
    waiting: deque[_Image[K]] = deque()  # images with tiles not yet predicted, in order
    tiles: list[tuple[_Image[K], tuple[int, int, int, int], torch.Tensor]] = []

    def run_batch() -> None:
        probs = forward(torch.stack([t for _, _, t in tiles]), tta).cpu().numpy()
        for (item, box, _), p in zip(tiles, probs):
            if len(item.boxes) == 1:
                item.probs = p
            else:
                if item.blender is None:
                    item.blender = TileBlender(p.shape[0], *item.image.shape[:2])
                item.blender.add(p, box, overlap)
            item.left -= 1
        tiles.clear()

    def finished() -> Iterator[tuple[K, np.ndarray, np.ndarray]]:
        while waiting and waiting[0].left == 0:
            item = waiting.popleft()
            probs = item.probs if item.blender is None else item.blender.result()
            assert probs is not None
            yield item.key, item.image, probs

    for key, image in images:
        tensor = to_tensor(image)
        height, width = image.shape[:2]
        boxes = tile_boxes(height, width, tile_size, overlap)
        item = _Image(key, image, boxes, len(boxes))
        waiting.append(item)
        for box in boxes:
            tile = tile_input(image, tensor, box, context)
            if tiles and (len(tiles) == batch_size or tiles[0][2].shape != tile.shape):
                run_batch()
                yield from finished()
            tiles.append((item, box, tile))
    if tiles:
        run_batch()
    yield from finished()
