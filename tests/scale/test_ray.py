"""Prediction and pool scoring on a local Ray give the local path's outputs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from crackal import api
from crackal.acquisition.score import score_pool
from crackal.data.io import list_images, read_image
from crackal.errors import CrackalError
from crackal.runs.checkpoint import load_model
from crackal.scale.cluster import plan_actors
from tests.conftest import make_dataset


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale")
    data = make_dataset(root / "data")
    api.train(data, root / "run", val=1, test=1, epochs=1, arch="unet", base_channels=4, depth=2, crop_size=32, progress=False)
    return root / "run"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("survey")
    folder = make_dataset(root, count=5, size=(40, 56)) / "images"
    make_dataset(root / "big", count=1, size=(90, 70))  # one tiled image among them
    (root / "big" / "images" / "img0.png").rename(folder / "big.png")
    return folder


def _same_outputs(a, b):
    for sub in ("masks", "probabilities", "overlays"):
        names = sorted(p.name for p in (a / sub).iterdir())
        assert names == sorted(p.name for p in (b / sub).iterdir())
        for name in names:
            np.testing.assert_array_equal(np.asarray(Image.open(a / sub / name)), np.asarray(Image.open(b / sub / name)))
    records = [[{k: v for k, v in r.items() if k != "seconds"} for r in json.loads((d / "measurements.json").read_text())["images"]]
               for d in (a, b)]
    assert records[0] == records[1]


def test_ray_prediction_writes_what_the_local_path_writes(ray_cluster, run, images, tmp_path):
    local = api.predict(run, images, tmp_path / "local", tile_size=48, overlap=8, progress=False)
    on_ray = api.predict(run, images, tmp_path / "ray", tile_size=48, overlap=8, ray="local", ray_actors=2, progress=False)
    assert [r["image"] for r in on_ray] == [r["image"] for r in local]
    _same_outputs(tmp_path / "local", tmp_path / "ray")


def test_ray_prediction_finds_the_local_paths_defects(ray_cluster, run, images, tmp_path):
    options = {"tile_size": 48, "overlap": 8, "threshold": 0.2, "defects": True, "progress": False}
    api.predict(run, images, tmp_path / "local", **options)
    api.predict(run, images, tmp_path / "ray", ray="local", ray_actors=2, **options)
    local, on_ray = (json.loads((tmp_path / d / "defects.json").read_text()) for d in ("local", "ray"))
    assert local, "a threshold this low finds defects"
    assert on_ray == local
    assert (tmp_path / "ray" / "condition.md").read_text() == (tmp_path / "local" / "condition.md").read_text()


def test_ray_prediction_with_onnxruntime(ray_cluster, run, images, tmp_path):
    pytest.importorskip("onnxruntime")
    local = api.predict(run, images, tmp_path / "local", engine="onnxruntime", progress=False)
    on_ray = api.predict(run, images, tmp_path / "ray", engine="onnxruntime", ray="local", progress=False)
    assert [r["image"] for r in on_ray] == [r["image"] for r in local]
    _same_outputs(tmp_path / "local", tmp_path / "ray")


def test_ray_prediction_reports_an_unreadable_image(ray_cluster, run, images, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for path in list(list_images(images))[:2]:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "broken.png").write_bytes(b"not a png")
    with pytest.raises(CrackalError, match="broken.png"):
        api.predict(run, folder, tmp_path / "out", ray="local", progress=False)
    records = api.predict(run, folder, tmp_path / "out", ray="local", skip_invalid=True, progress=False)
    assert len(records) == 2


@pytest.mark.parametrize("heuristic", ["bald", "entropy"])
def test_ray_pool_scores_equal_the_local_scores(ray_cluster, run, images, heuristic):
    from crackal.scale.jobs import score_pool_ray

    paths = list_images(images)
    model, _ = load_model(run)
    local = score_pool(model, [read_image(p) for p in paths], heuristic, iterations=6, batch_size=2, seed=3)
    on_ray = score_pool_ray([run / "checkpoints" / "best.pt"], paths, heuristic, iterations=6, batch_size=2, seed=3,
                            address="local")
    np.testing.assert_allclose(on_ray, local, rtol=0, atol=1e-6)
    assert np.ptp(local) > 0


def test_ray_pool_scoring_refuses_mc_batchnorm():
    from crackal.scale.jobs import score_pool_ray

    with pytest.raises(CrackalError, match="without --ray"):
        score_pool_ray(["x"], ["y"], method="mc_batchnorm")


def test_actor_plan_leaves_cpus_to_the_read_tasks():
    plan = plan_actors(2, 0, 2)
    assert plan.actors * plan.num_cpus < 2 and plan.num_gpus == 0
    assert plan_actors(8, 2).num_gpus == 1 and plan_actors(8, 2).actors == 2
    with pytest.raises(CrackalError):
        plan_actors(2, 0, 0)


def test_without_ray_nothing_imports_ray(run, images, tmp_path):
    code = ("import sys; from crackal.cli import main; "
            f"assert main(['predict', {str(run)!r}, {str(images)!r}, '--out', {str(tmp_path / 'p')!r}, '--quiet']) == 0; "
            "assert 'ray' not in sys.modules and 'crackal.scale' not in sys.modules, 'ray imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_al_step_on_ray_selects_what_the_local_step_selects(ray_cluster, tmp_path):
    from crackal.active.loop import run_round
    from crackal.active.store import ProjectStore
    from crackal.cli import main
    from crackal.data.synth import write_synthetic_dataset
    from tests.active.conftest import make_project

    data = write_synthetic_dataset(tmp_path / "data", count=18, size=64, seed=4)
    local = run_round(make_project(tmp_path / "local", data, seed=7))
    assert main(["al", "step", str(make_project(tmp_path / "ray", data, seed=7)), "--ray", "local", "--quiet"]) == 0
    store = ProjectStore(tmp_path / "ray")
    try:
        assert [record.name for record, _, _ in store.queue()] == local.selected
        assert store.current_round()["pool_uncertainty"] == pytest.approx(local.pool_uncertainty, abs=1e-6)
    finally:
        store.close()
