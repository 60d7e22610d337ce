"""The kill soak benchmark, small: a project SIGKILLed at random moments loses nothing and ends
with the same selections as an uninterrupted one."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_project_killed_at_random_moments_loses_nothing(tmp_path):
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "kill_soak.py"), "--kills", "4", "--rounds", "3",
                          "--out", str(tmp_path), "--no-docs"], capture_output=True, text=True, timeout=900,
                         env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"})
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout[run.stdout.index("{"):])
    # 3 rounds: the initial 4 labels and two queues of 3
    assert result["identical_selections"] and result["labels_after"] == result["reference_labels"] == 4 + 2 * 3
    assert result["kills"] >= 1
