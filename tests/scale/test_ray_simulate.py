"""``crackal simulate --ray``: seeds and the reference as Ray tasks on a local Ray write the local run's report."""

from __future__ import annotations

import io
import json

import pytest

from crackal import api
from crackal.active.simulate_ray import _failure, _run_seed
from crackal.active.store import ProjectStore
from crackal.cli import main
from crackal.errors import CrackalError
from crackal.progress import Progress
from tests.conftest import make_dataset

STRATEGIES, SEEDS = ["bald", "random"], 2
TINY = ["--seeds", str(SEEDS), "--rounds", "2", "--heldout", "2", "--initial", "2", "--query-size", "2", "--iterations", "2",
        "--epochs", "1", "--crop-size", "32", "--quiet"] + [
    arg for s in ("train.arch=unet", "train.base_channels=4", "train.depth=2", "train.samples_per_epoch=4", "train.batch_size=4",
                  "train.threads=1", "stop_set_size=0") for arg in ("--set", s)]


def _selections(out):
    """Each run's labelled images by round."""
    runs = {}
    for strategy in STRATEGIES:
        for seed in range(SEEDS):
            store = ProjectStore(out / strategy / f"seed{seed}")
            try:
                runs[strategy, seed] = sorted((r.labelled_round, r.name) for r in store.labelled())
            finally:
                store.close()
    return runs


def test_simulate_on_ray_writes_the_local_report(ray_cluster, tmp_path):
    data = make_dataset(tmp_path / "data", count=8)
    args = ["simulate", str(data)] + [arg for s in STRATEGIES for arg in ("--strategy", s)] + TINY
    assert main(args + ["--out", str(tmp_path / "local")]) == 0
    assert main(args + ["--out", str(tmp_path / "ray"), "--ray", "local"]) == 0
    local, on_ray = (json.loads((tmp_path / d / "report.json").read_text()) for d in ("local", "ray"))
    assert on_ray["reference_f1"] == pytest.approx(local["reference_f1"], abs=1e-6)
    assert on_ray["strategies"].keys() == local["strategies"].keys() == set(STRATEGIES)
    for strategy, entry in local["strategies"].items():
        assert on_ray["strategies"][strategy]["labelled"] == entry["labelled"]
        assert on_ray["strategies"][strategy]["f1_mean"] == pytest.approx(entry["f1_mean"], abs=1e-6)
    assert _selections(tmp_path / "ray") == _selections(tmp_path / "local")
    assert on_ray["pool"] == local["pool"]
    assert (tmp_path / "ray" / "pool_split.json").is_file() and not (tmp_path / "local" / "pool_split.json").exists()

    # a second call finds every run finished and rewrites the same report
    lines, news = [], io.StringIO()
    api.simulate(data, tmp_path / "ray", STRATEGIES, seeds=SEEDS, rounds=2, heldout=2, initial=2, query_size=2, iterations=2,
                 stop_set_size=0, ray="local", on_round=lines.append, progress=Progress(stream=news),
                 train={"arch": "unet", "base_channels": 4, "depth": 2, "epochs": 1, "samples_per_epoch": 4, "batch_size": 4,
                        "crop_size": 32, "threads": 1})
    assert all(isinstance(line, str) for line in lines) and len(lines) == len(STRATEGIES) * SEEDS  # no round was rerun
    assert "simulation on Ray: 3 tasks (2 seeds x 2 strategies, the reference)" in news.getvalue()
    assert all(f"{name} finished on Ray" in news.getvalue() for name in ("seed 0", "seed 1", "reference"))
    again = json.loads((tmp_path / "ray" / "report.json").read_text())
    assert {s: e["labelled"] for s, e in again["strategies"].items()} == {s: e["labelled"] for s, e in local["strategies"].items()}


def test_simulate_on_ray_refuses_bad_options_before_any_work(ray_cluster, tmp_path):
    data = make_dataset(tmp_path / "data", count=8)
    with pytest.raises(CrackalError, match="strategy"):
        api.simulate(data, tmp_path / "out", ["nope"], ray="local")
    with pytest.raises(CrackalError, match="without GPUs"):
        api.simulate(data, tmp_path / "out", ["random"], ray="local", train={"device": "cuda"})
    assert not (tmp_path / "out").exists()


def test_a_node_that_cannot_see_out_says_so(ray_cluster, tmp_path):
    from crackal.data.layout import find_pairs

    pairs = find_pairs(make_dataset(tmp_path / "data", count=3))
    with pytest.raises(CrackalError, match="file system every Ray node sees"):
        _run_seed(pairs, tmp_path / "elsewhere", ["random"], 0, {})

    @ray_cluster.remote(num_cpus=0.1)
    def refuse():
        raise CrackalError("seed trouble")

    with pytest.raises(Exception) as caught:
        ray_cluster.get(refuse.remote())
    assert _failure(caught.value) == "seed trouble"
