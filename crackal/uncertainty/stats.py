"""Running statistics of stochastic predictions, reduced on the fly.

Every acquisition heuristic needs only three per-pixel moments of the I probability
samples: their mean, the mean of their squares and the mean of their entropies. They are
accumulated one sample at a time, so nothing ever holds an ``(N, C, H, W, I)`` array.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def entropy(probs: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Shannon entropy (natural log, 0 log 0 = 0) along ``dim``.

    >>> entropy(torch.tensor([[0.5, 0.5], [1.0, 0.0]]))
    tensor([0.6931, 0.0000])
    """
    return 0.0 - torch.special.xlogy(probs, probs).sum(dim)  # 0.0 - x: no negative zero for a certain pixel


@dataclass
class SampleStats:
    """Per-pixel moments of I probability samples: ``mean`` and ``mean_sq`` ``(N, C, H, W)``,
    ``mean_entropy`` ``(N, H, W)``."""

    mean: torch.Tensor
    mean_sq: torch.Tensor
    mean_entropy: torch.Tensor
    samples: int


class StatsAccumulator:
    """Adds probability samples ``(N, C, H, W)`` one at a time.

    >>> acc = StatsAccumulator()
    >>> acc.add(torch.tensor([[[[1.0]], [[0.0]]]])); acc.add(torch.tensor([[[[0.0]], [[1.0]]]]))
    >>> acc.result().mean.flatten().tolist()
    [0.5, 0.5]
    """

    def __init__(self) -> None:
        self.sum: torch.Tensor | None = None
        self.sum_sq: torch.Tensor | None = None
        self.sum_entropy: torch.Tensor | None = None
        self.count = 0

    def add(self, probs: torch.Tensor) -> None:
        """One sample ``(N, C, H, W)``."""
        self.add_stack(probs.unsqueeze(1))

    def add_stack(self, probs: torch.Tensor) -> None:
        """Several samples at once, ``(N, S, C, H, W)`` (float64 input stays float64)."""
        if probs.dtype != torch.float64:
            probs = probs.float()
        if self.sum is None:
            shape = (probs.shape[0], *probs.shape[2:])
            self.sum = probs.new_zeros(shape)
            self.sum_sq = probs.new_zeros(shape)
            self.sum_entropy = probs.new_zeros((shape[0], *shape[2:]))
        assert self.sum_sq is not None and self.sum_entropy is not None  # set together with sum
        self.sum += probs.sum(1)
        self.sum_sq += (probs * probs).sum(1)
        self.sum_entropy += entropy(probs, dim=2).sum(1)
        self.count += probs.shape[1]

    def result(self) -> SampleStats:
        """The moments so far (sums divided by the number of samples)."""
        if not self.count:
            raise ValueError("no samples were added")
        n = self.count
        assert self.sum is not None and self.sum_sq is not None and self.sum_entropy is not None  # set by the first add
        return SampleStats(self.sum / n, self.sum_sq / n, self.sum_entropy / n, n)


def stats_from_samples(samples: torch.Tensor) -> SampleStats:
    """The same moments from a full ``(N, C, H, W, I)`` stack (for tests and small inputs)."""
    acc = StatsAccumulator()
    acc.add_stack(samples.movedim(-1, 1))
    return acc.result()
