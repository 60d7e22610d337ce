"""Scoring an unlabelled pool: stream it in batches, sample, reduce, keep one number per image.

Memory is bounded by one batch of moments whatever the size of the pool.
"""

from __future__ import annotations

import contextlib
import ctypes
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

import numpy as np
import torch
from torch import nn

from crackal.acquisition.heuristics import STRATEGIES, pixel_scores
from crackal.acquisition.reduce import DEFAULT_REDUCTION, REDUCTIONS, Reduction, reduce_scores
from crackal.data.transforms import to_tensor
from crackal.errors import CrackalError, choose
from crackal.progress import Progress
from crackal.uncertainty.sampling import METHODS, Method, sample

TRIM_EVERY = 4  # batches


class SizedImages(Protocol):
    """A sized iterable of ``(H, W, 3) uint8`` images: a list, an array, a lazy reader."""

    def __len__(self) -> int: ...
    def __iter__(self) -> Iterator[np.ndarray]: ...


def _trim_heap() -> None:
    """Give freed heap memory back to the OS (glibc). Without it, glibc's adaptive mmap
    threshold lets a long scoring loop's resident memory creep up with the pool size."""
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _batches(images: Iterable[np.ndarray], batch_size: int) -> Iterable[torch.Tensor]:
    """Normalised batches of consecutive same-sized images."""
    pending: list[torch.Tensor] = []
    for image in images:
        tensor = to_tensor(image)
        if pending and (len(pending) == batch_size or pending[0].shape != tensor.shape):
            yield torch.stack(pending)
            pending = []
        pending.append(tensor)
    if pending:
        yield torch.stack(pending)


def score_pool(
    models: nn.Module | Sequence[nn.Module],
    images: SizedImages,
    heuristic: str = "bald",
    reduction: Reduction = DEFAULT_REDUCTION,
    method: Method = "mc_dropout",
    iterations: int = 20,
    batch_size: int = 4,
    reference_batches: Callable[[], torch.Tensor] | None = None,
    seed: int = 0,
    progress: bool | Progress = False,
) -> np.ndarray:
    """One acquisition score per pool image (``images``: a sized iterable of ``(H, W, 3) uint8``
    arrays, read lazily for a large pool).

    ``method``: ``mc_dropout`` (head-only fast path when the model allows it), ``mc_batchnorm``
    (needs ``reference_batches``, random labelled mini-batches) or ``ensemble`` (``models`` is a
    list); ``random`` scores without running a model. Seeded: the same call gives the same scores.
    """
    choose(STRATEGIES, heuristic, "strategy")
    choose(REDUCTIONS, reduction, "reduction")
    choose(METHODS, method, "method")
    if method == "mc_batchnorm" and reference_batches is None:
        raise CrackalError("MC-BatchNorm needs labelled images to draw its reference batches from")
    if not len(images):
        raise CrackalError("the unlabelled pool is empty: nothing to score")
    if heuristic == "random":
        return np.random.default_rng(seed).random(len(images))
    scores = []
    batches = Progress.of(progress).bar(_batches(images, batch_size), total=-(-len(images) // batch_size),
                                        desc=f"scoring pool ({len(images)} images)", unit="batches")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for index, batch in enumerate(batches):
            stats = sample(method, models, batch, iterations, reference_batches)
            defect = 1 - stats.mean[:, 0]
            scores.append(reduce_scores(pixel_scores(stats, heuristic), reduction, defect).cpu())
            del stats, defect
            if index % TRIM_EVERY == 0:
                _trim_heap()
    return torch.cat(scores).numpy().astype(np.float64)
