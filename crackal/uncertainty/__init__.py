"""Uncertainty from stochastic predictions: MC-Dropout (head-only and full), MC-BatchNorm, ensembles."""

from crackal.uncertainty.sampling import METHODS, batch_statistics_from, ensemble, head_only, mc_batchnorm, mc_dropout, sample
from crackal.uncertainty.stats import SampleStats, StatsAccumulator, entropy, stats_from_samples

__all__ = [
    "METHODS",
    "SampleStats",
    "StatsAccumulator",
    "batch_statistics_from",
    "ensemble",
    "entropy",
    "head_only",
    "mc_batchnorm",
    "mc_dropout",
    "sample",
    "stats_from_samples",
]
