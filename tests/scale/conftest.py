"""One local Ray cluster for the tests of this folder (2 CPUs, no dashboard, a short temp dir),
shut down after them so that its workers and object store hold nothing while the rest run."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

import crackal


@pytest.fixture(scope="package")
def ray_cluster():
    ray = pytest.importorskip("ray")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths have a length limit
    source = str(Path(crackal.__file__).resolve().parents[1])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=temp,
             runtime_env={"env_vars": {"PYTHONPATH": source, "NO_ALBUMENTATIONS_UPDATE": "1"}})
    yield ray
    ray.shutdown()
    shutil.rmtree(temp, ignore_errors=True)
