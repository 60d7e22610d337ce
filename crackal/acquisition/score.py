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


def _groups(images: Iterable[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    """The pool cut into consecutive groups of ``size`` images (the last may be shorter)."""
    group: list[np.ndarray] = []
    for image in images:
        group.append(image)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


def group_seed(seed: int, index: int) -> int:
    """The torch seed of the pool's ``index``-th group: each group draws its own samples, so a
    group scores the same wherever it runs (this process, or a Ray worker)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def score_group(
    models: nn.Module | Sequence[nn.Module],
    images: Sequence[np.ndarray],
    index: int,
    heuristic: str = "bald",
    reduction: Reduction = DEFAULT_REDUCTION,
    method: Method = "mc_dropout",
    iterations: int = 20,
    reference_batches: Callable[[], torch.Tensor] | None = None,
    seed: int = 0,
    on_mean: Callable[[torch.Tensor], None] | None = None,
) -> np.ndarray:
    """The scores of one group of pool images (the ``index``-th, seeded by ``group_seed``); runs
    of same-sized images go through the model together. ``on_mean`` (if given) is called with
    each run's mean class probabilities ``(n, C, H, W)``, in pool order."""
    scores = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(group_seed(seed, index))
        for batch in _batches(images, len(images)):
            stats = sample(method, models, batch, iterations, reference_batches)
            if on_mean is not None:
                on_mean(stats.mean)
            defect = 1 - stats.mean[:, 0]
            scores.append(reduce_scores(pixel_scores(stats, heuristic), reduction, defect).cpu())
            del stats, defect
    return torch.cat(scores).numpy().astype(np.float64)


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
    on_mean: Callable[[torch.Tensor], None] | None = None,
) -> np.ndarray:
    """One acquisition score per pool image (``images``: a sized iterable of ``(H, W, 3) uint8``
    arrays, read lazily for a large pool).

    ``method``: ``mc_dropout`` (head-only fast path when the model allows it), ``mc_batchnorm``
    (needs ``reference_batches``, random labelled mini-batches) or ``ensemble`` (``models`` is a
    list); ``random`` scores without running a model. Seeded: the same call gives the same scores.
    The pool is scored in groups of ``batch_size`` images, each seeded by ``group_seed(seed,
    index)``, so ``crackal.scale`` scoring a group on a Ray worker gives the same numbers.
    ``on_mean`` receives the mean class probabilities of every image, batch by batch in pool
    order (e.g. for the predicted masks of cost-aware selection; never called for ``random``).
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
    groups = Progress.of(progress).bar(_groups(images, batch_size), total=-(-len(images) // batch_size),
                                       desc=f"scoring pool ({len(images)} images)", unit="batches")
    for index, group in enumerate(groups):
        scores.append(score_group(models, group, index, heuristic, reduction, method, iterations, reference_batches, seed,
                                  on_mean))
        if index % TRIM_EVERY == 0:
            _trim_heap()
    return np.concatenate(scores)
