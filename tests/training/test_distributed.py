"""DistributedDataParallel training under torchrun: 2 CPU processes with the gloo backend."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from crackal.training import distributed
from tests.conftest import make_dataset

SCRIPT = textwrap.dedent("""
    import sys, torch
    from crackal import api
    from crackal.training import distributed
    from crackal.training import trainer

    data, out, weights = sys.argv[1:4]
    runners = []
    original = trainer.SegmentationRunner

    class Recording(original):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            runners.append(self)

    trainer.SegmentationRunner = Recording
    result = api.train(data, out, val=1, test=1, epochs=2, arch="unet", base_channels=4, depth=2, crop_size=32, batch_size=2,
                       samples_per_epoch=4, device="cpu", progress=False)
    rank = int(__import__("os").environ["RANK"])
    torch.save(runners[0].model.state_dict(), f"{weights}/rank{rank}.pt")
""")


@pytest.mark.slow
def test_two_gloo_processes_train_the_same_weights(tmp_path):
    data = make_dataset(tmp_path / "data", count=6)
    (tmp_path / "weights").mkdir()
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root, "OMP_NUM_THREADS": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}
    torchrun = Path(sys.executable).with_name("torchrun")
    subprocess.run([str(torchrun), "--standalone", "--nproc_per_node", "2", str(script), str(data), str(tmp_path / "run"),
                    str(tmp_path / "weights")], check=True, env=env, timeout=300, cwd=tmp_path)
    first, second = (torch.load(tmp_path / "weights" / f"rank{r}.pt") for r in (0, 1))
    assert first.keys() == second.keys()
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=0, atol=0)
    initial = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=False)
    assert initial["epoch"] == 2 and len(initial["history"]) == 2  # rank 0 wrote the run folder
    assert (tmp_path / "run" / "metrics.json").is_file() and (tmp_path / "run" / "split.json").is_file()


def test_a_single_process_is_rank_zero_of_one():
    assert not distributed.launched() or "WORLD_SIZE" in os.environ
    assert distributed.rank() == 0 and distributed.world_size() == 1 and distributed.is_main()
    assert distributed.shard([3, 1, 2]) == [3, 1, 2] and distributed.from_main(True)
    model = torch.nn.Linear(2, 2)
    assert distributed.wrap(model, torch.device("cpu")) is model
