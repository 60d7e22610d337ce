import numpy as np
import pytest

from crackal.data.splits import load_split, make_split, save_split
from crackal.errors import CrackalError

NAMES = [f"{i:03d}" for i in range(118)]


def test_counts_and_disjoint():
    split = make_split(NAMES, val=10, test=38, seed=0)
    assert (len(split["train"]), len(split["val"]), len(split["test"])) == (70, 10, 38)
    assert set(split["train"]) | set(split["val"]) | set(split["test"]) == set(NAMES)
    assert not set(split["train"]) & set(split["test"])


def test_fractions():
    split = make_split(NAMES[:20], val=0.1, test=0.25, seed=3)
    assert (len(split["val"]), len(split["test"])) == (2, 5)


def test_seeded_and_saved(tmp_path):
    assert make_split(NAMES, seed=5) == make_split(NAMES, seed=5)
    assert make_split(NAMES, seed=5) != make_split(NAMES, seed=6)
    save_split(make_split(NAMES, seed=5), tmp_path / "split.json")
    assert load_split(tmp_path / "split.json") == make_split(NAMES, seed=5)


def test_no_training_image_left():
    with pytest.raises(CrackalError, match="no training image"):
        make_split(NAMES[:4], val=2, test=2)


def test_group_split_keeps_each_group_in_one_split_and_within_its_share():
    from crackal.data.splits import make_group_split

    rng = np.random.default_rng(3)
    groups = {f"seg{g:02d}_{i:03d}": f"seg{g:02d}" for g in range(28) for i in range(int(rng.integers(1, 40)))}
    split = make_group_split(groups, val=0.1, test=0.2, seed=5)
    where = {name: s for s, names in split.items() for name in names}
    assert sorted(where) == sorted(groups)  # every image once
    for group in set(groups.values()):
        assert len({where[n] for n in groups if groups[n] == group}) == 1  # a group never straddles splits
    assert 0 < len(split["test"]) <= round(0.2 * len(groups)) and 0 < len(split["val"]) <= round(0.1 * len(groups))
    assert make_group_split(groups, val=0.1, test=0.2, seed=5) == split
    assert make_group_split(groups, val=0.1, test=0.2, seed=6) != split
