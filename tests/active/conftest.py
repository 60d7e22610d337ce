from pathlib import Path

import pytest

from crackal.active.config import ALConfig
from crackal.active.loop import create_project
from crackal.data.layout import find_pairs
from crackal.data.synth import write_synthetic_dataset

FAST = dict(base_channels=8, depth=2, epochs=1, samples_per_epoch=8, batch_size=4, crop_size=64, iterations=3)


@pytest.fixture(scope="session")
def al_data(tmp_path_factory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("al"), count=18, size=64, seed=4)


def make_project(root: Path, data: Path, **options):
    pairs = find_pairs(data)
    pool = [(p.name, p.image, p.mask) for p in pairs[:14]]
    held = [(p.name, p.image, p.mask) for p in pairs[14:]]
    config = ALConfig(**{"simulation": True, "initial": 4, "batch": 3, **FAST, **options})
    create_project(root, pool, held, config).close()
    return root
