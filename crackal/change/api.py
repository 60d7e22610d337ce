"""Change detection from Python: synthetic pairs, tiles of a bi-temporal dataset, AL simulations."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from crackal.change.simulate import run_configs, simulate_change
from crackal.change.train import ChangeTrainConfig
from crackal.data.bitemporal import TileSet, balanced_subset, cut_tiles, find_bitemporal, load_bitemporal
from crackal.data.splits import make_split
from crackal.data.synth import Surface
from crackal.data.synth_change import ChangeOptions, write_change_dataset
from crackal.errors import CrackalError

DEFAULT_RUNS = ("variance:ensemble", "variance:mc_batchnorm", "entropy:mc_batchnorm", "random")


def synth_pairs(out: str | Path, count: int = 40, size: int | str = 256, seed: int = 0,
                change_probability: float = 0.5, surface: str = "mixed") -> Path:
    """Write synthetic bi-temporal pairs (``A/``, ``B/``, ``masks/``) to ``out``."""
    options = ChangeOptions(surface=cast(Surface, surface), change_probability=change_probability)  # checked by ChangeOptions
    return write_change_dataset(out, count, size, seed, options)


def pool_and_test(data: str | Path, tile: int = 64, heldout: float = 0.3, seed: int = 0,
                  test_per_class: int | None = None) -> tuple[TileSet, TileSet]:
    """Split the pairs of ``data`` (seeded, by pair), tile both parts; the pool keeps its
    labelled tiles, the test set is balanced (as many changed as unchanged tiles)."""
    samples = [load_bitemporal(p) for p in find_bitemporal(data)]
    if len(samples) < 2:
        raise CrackalError(f"{data} holds {len(samples)} pair(s); a pool and a held-out test set need at least 2")
    split = make_split([s["name"] for s in samples], val=0, test=heldout, seed=seed)
    held = set(split["test"])
    pool = cut_tiles([s for s in samples if s["name"] not in held], tile).labelled()
    test = balanced_subset(cut_tiles([s for s in samples if s["name"] in held], tile), test_per_class, seed)
    return pool, test


def simulate(data: str | Path, out: str | Path, runs: list[str] | tuple[str, ...] = DEFAULT_RUNS, *, tile: int = 64,
             heldout: float = 0.3, seeds: int = 3, test_per_class: int | None = None, progress=None,
             train: ChangeTrainConfig | dict | None = None, **options) -> Path:
    """Change-detection AL with the ground truth as labeller on the pairs of ``data``;
    ``options`` are ``ChangeALConfig`` fields (``initial_per_class``, ``query_size``, ``rounds`` ...)."""
    train = ChangeTrainConfig(**train) if isinstance(train, dict) else (train or ChangeTrainConfig())
    run_configs(list(runs), seeds, train=train, **options)  # bad options fail before the pairs are read
    pool, test = pool_and_test(data, tile, heldout, 0, test_per_class)
    return simulate_change(pool, test, out, list(runs), seeds, progress=progress, train=train, **options)
