"""Helpers shared by the benchmark scripts: locating ../shared/data and describing the machine."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CRACKAL_DATA", ROOT.parent / "shared" / "data"))


def dataset_or_skip(name: str) -> Path:
    """The dataset folder under ``../shared/data``, or a clean exit (status 0) when it is absent."""
    path = SHARED_DATA / name
    if not path.is_dir():
        print(f"skip: {path} not found (set CRACKAL_DATA to the folder holding {name}/)")
        sys.exit(0)
    return path


def hardware() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {torch.get_num_threads()} torch threads, {gpu}, torch {torch.__version__}"
