from dataclasses import fields
from pathlib import Path

import pytest

from crackal.active.config import ALConfig
from crackal.active.project import create_project
from crackal.data.layout import find_pairs
from crackal.data.synth import write_synthetic_dataset
from crackal.runs.config import DetectionConfig, TrainConfig

FAST = dict(arch="unet", base_channels=8, depth=2, epochs=1, samples_per_epoch=8, batch_size=4, crop_size=64)


def fast_config(**options) -> ALConfig:
    """A simulation config with a tiny round recipe; training options may be given flat."""
    training = DetectionConfig if options.get("task") == "detection" else TrainConfig
    names = {f.name for f in fields(training)} - {f.name for f in fields(ALConfig)}
    train = {k: v for k, v in FAST.items() if k in names}
    train.update({k: options.pop(k) for k in list(options) if k in names})
    return ALConfig(**{"simulation": True, "initial": 4, "query_size": 3, "iterations": 3, **options, "train": train})


@pytest.fixture(scope="session")
def al_data(tmp_path_factory) -> Path:
    return write_synthetic_dataset(tmp_path_factory.mktemp("al"), count=18, size=64, seed=4)


def make_project(root: Path, data: Path, **options):
    pairs = find_pairs(data)
    pool = [(p.name, p.image, p.mask) for p in pairs[:14]]
    held = [(p.name, p.image, p.mask) for p in pairs[14:]]
    config = fast_config(**options)
    create_project(root, pool, held, config).close()
    return root
