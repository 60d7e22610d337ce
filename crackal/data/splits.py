"""Seeded train/val/test splits, saved with each run so it can be reproduced."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from crackal.errors import CrackalError, OptionError

SPLITS = ("train", "val", "test")
T = TypeVar("T")


def _count(size: float, total: int, what: str) -> int:
    """A share (< 1) or a whole count (>= 1) of ``total`` images."""
    if size < 0 or (size >= 1 and size != int(size)):
        raise OptionError(what, f"is a share below 1 or a whole number of images, got {size}")
    return int(round(size * total)) if size < 1 else int(size)


def make_split(names: list[str], val: float = 0.1, test: float = 0.2, seed: int = 0) -> dict[str, list[str]]:
    """Shuffle ``names`` with ``seed`` and cut them into train/val/test.

    ``val`` and ``test`` are fractions (< 1) or counts (>= 1). Every split is sorted.

    >>> make_split([f"{i:03d}" for i in range(10)], val=2, test=3, seed=0)["val"]
    ['004', '006']
    """
    total = len(names)
    n_val, n_test = _count(val, total, "val"), _count(test, total, "test")
    if n_val + n_test >= total:
        raise CrackalError(
            f"val ({n_val}) + test ({n_test}) leave no training image out of {total}; lower --val/--test"
        )
    order = np.random.default_rng(seed).permutation(total)
    shuffled = [names[i] for i in order]
    return {
        "val": sorted(shuffled[:n_val]),
        "test": sorted(shuffled[n_val : n_val + n_test]),
        "train": sorted(shuffled[n_val + n_test :]),
    }


def make_group_split(groups: dict[str, str], val: float = 0.1, test: float = 0.2, seed: int = 0) -> dict[str, list[str]]:
    """Cut images into train/val/test by group (e.g. the road segment of survey frames, whose
    neighbours look alike): every group's images land in one split. Groups are shuffled with
    ``seed``; test, then val, take each group that still fits their share (or count) of the
    images, so they never exceed it; the rest train. Every split is sorted.

    >>> split = make_group_split({"a1": "a", "a2": "a", "b1": "b", "c1": "c", "c2": "c", "d1": "d"}, val=1, test=2)
    >>> {k: sorted({name[0] for name in v}) for k, v in split.items()}
    {'val': ['b'], 'test': ['c'], 'train': ['a', 'd']}
    """
    members: dict[str, list[str]] = {}
    for name, group in groups.items():
        members.setdefault(group, []).append(name)
    total = len(groups)
    wanted = {"test": _count(test, total, "test"), "val": _count(val, total, "val")}
    split: dict[str, list[str]] = {"val": [], "test": [], "train": []}
    order = sorted(members)
    for i in np.random.default_rng(seed).permutation(len(order)):
        names = members[order[i]]
        where = next((s for s in ("test", "val") if len(split[s]) + len(names) <= wanted[s]), "train")
        split[where] += names
    if not split["train"]:
        raise CrackalError(f"val and test take every group of {total} images; lower --val/--test")
    return {k: sorted(v) for k, v in split.items()}


def save_split(split: dict[str, list[str]], path: str | Path) -> None:
    """Write a split (``{"train": [...], "val": [...], "test": [...]}``) as JSON."""
    Path(path).write_text(json.dumps(split, indent=1))


def load_split(path: str | Path) -> dict[str, list[str]]:
    """A split written by ``save_split``; a ``CrackalError`` when the file is missing or is not one."""
    path = Path(path)
    if not path.is_file():
        raise CrackalError(f"split file not found: {path}")
    split = json.loads(path.read_text())
    if not isinstance(split, dict) or not set(split) <= set(SPLITS):
        raise CrackalError(f"{path}: a split file maps 'train', 'val', 'test' to lists of image names")
    return split


def pick(items: Sequence[T], names: Sequence[str], split: str) -> list[T]:
    """The ``items`` (anything with a ``name``) that a split lists, in the split's order."""
    by_name = {item.name: item for item in items}  # type: ignore[attr-defined]
    missing = [n for n in names if n not in by_name]
    if missing:
        raise CrackalError(f"the {split} split names images that are not in the dataset: {', '.join(missing[:5])}")
    return [by_name[n] for n in names]
