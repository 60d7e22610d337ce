"""The other prediction paths on a local Ray give the local path's files: GeoTIFF windows as Ray
tasks (`crackal predict --ray` on a raster), `crackal detect predict --ray`, `crackal classify
predict --ray`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from crackal import api
from crackal.cli import main
from crackal.errors import CrackalError
from tests.conftest import make_dataset

rasterio = pytest.importorskip("rasterio")


def _same_pngs(a, b, folders):
    for sub in folders:
        names = sorted(p.name for p in (a / sub).iterdir())
        assert names and names == sorted(p.name for p in (b / sub).iterdir())
        for name in names:
            np.testing.assert_array_equal(np.asarray(Image.open(a / sub / name)), np.asarray(Image.open(b / sub / name)))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray_paths")
    return make_dataset(root, count=5, size=(40, 56)) / "images"


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray_seg")
    data = make_dataset(root / "data")
    api.train(data, root / "run", val=1, test=1, epochs=1, arch="unet", base_channels=4, depth=2, crop_size=32, progress=False)
    return root / "run"


@pytest.fixture(scope="module")
def geotiff(images, tmp_path_factory):
    """A 150 x 190 GeoTIFF (UTM 33N, 1 cm pixels) tiled from the survey images: 9 windows of 64 px."""
    from rasterio.transform import from_origin

    tiles = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(images.iterdir())]
    row = np.concatenate(tiles[:4], axis=1)  # 40 x 224
    mosaic = np.concatenate([row, row[:, ::-1], row[::-1], row], axis=0)[:150, :190]
    path = tmp_path_factory.mktemp("raster") / "ortho.tif"
    profile = {"driver": "GTiff", "height": mosaic.shape[0], "width": mosaic.shape[1], "count": 3, "dtype": "uint8",
               "crs": "EPSG:32633", "transform": from_origin(500000.0, 4200000.0, 0.01, 0.01)}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(mosaic.transpose(2, 0, 1))
    return path


def test_geotiff_windows_on_ray_write_what_the_local_path_writes(ray_cluster, segmenter, geotiff, images, tmp_path):
    folder = tmp_path / "in"  # a raster among photos: the photos go to the actors, the raster's windows too
    folder.mkdir()
    (folder / geotiff.name).write_bytes(geotiff.read_bytes())
    for path in sorted(images.iterdir())[:2]:
        (folder / path.name).write_bytes(path.read_bytes())
    options = {"tile_size": 48, "overlap": 8, "window": 64, "threshold": 0.2, "defects": True, "progress": False}
    local = api.predict(segmenter, folder, tmp_path / "local", **options)
    on_ray = api.predict(segmenter, folder, tmp_path / "ray", ray="local", ray_actors=2, **options)
    assert [r["image"] for r in on_ray] == [r["image"] for r in local] == sorted(p.name for p in folder.iterdir())
    for sub in ("masks", "probabilities"):
        with rasterio.open(tmp_path / "local" / sub / "ortho.tif") as a, rasterio.open(tmp_path / "ray" / sub / "ortho.tif") as b:
            assert (a.crs, a.transform, a.shape) == (b.crs, b.transform, b.shape)
            np.testing.assert_array_equal(a.read(1), b.read(1))
            assert sub == "probabilities" or a.read(1).any(), "a threshold this low finds crack pixels"
    _same_pngs(tmp_path / "local", tmp_path / "ray", ["overlays"])
    records = [[{k: v for k, v in r.items() if k != "seconds"}
                for r in json.loads((tmp_path / d / "measurements.json").read_text())["images"]] for d in ("local", "ray")]
    assert records[0] == records[1]
    local_defects, ray_defects = (json.loads((tmp_path / d / "defects.json").read_text())["defects"] for d in ("local", "ray"))
    assert local_defects and ray_defects == local_defects
    assert (tmp_path / "ray" / "defects.geojson").read_text() == (tmp_path / "local" / "defects.geojson").read_text()


def detector_run(root):
    """A seeded, untrained detector saved as a run, its classification bias zeroed so that many
    boxes pass the run's threshold (scores around 0.5)."""
    from crackal.models.detector import create_detector
    from crackal.runs.checkpoint import atomic_save
    from crackal.runs.config import DetectionConfig

    torch.manual_seed(0)
    config = DetectionConfig(class_names=["background", "crack", "pothole"])
    state = create_detector(**config.model_kwargs()).state_dict()
    state["head.classification_head.cls_logits.1.bias"].zero_()
    (root / "checkpoints").mkdir(parents=True)
    atomic_save({"task": "detection", "model": state, "config": config.to_dict(), "threshold": 0.3, "epoch": 1},
                root / "checkpoints" / "best.pt")
    return root


@pytest.mark.parametrize("box_format", ["voc", "coco"])
def test_detect_predict_on_ray_writes_what_the_local_path_writes(ray_cluster, images, tmp_path, box_format):
    run = detector_run(tmp_path / "det")
    local = api.detect_predict(run, images, tmp_path / "local", box_format=box_format, progress=False)
    on_ray = api.detect_predict(run, images, tmp_path / "ray", box_format=box_format, ray="local", ray_actors=2, progress=False)
    assert on_ray == local and sum(local.values()) > 0
    _same_pngs(tmp_path / "local", tmp_path / "ray", ["overlays"])
    files = ["detections.json", *(["boxes.json"] if box_format == "coco" else [f"boxes/{p.stem}.xml" for p in images.iterdir()])]
    for name in files:
        assert (tmp_path / "ray" / name).read_text() == (tmp_path / "local" / name).read_text(), name


def test_detect_predict_on_ray_from_the_cli_reports_an_unreadable_image(ray_cluster, images, tmp_path):
    run = detector_run(tmp_path / "det")
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.png").write_bytes(next(images.iterdir()).read_bytes())
    assert main(["detect", "predict", str(run), str(folder), "--out", str(tmp_path / "ok"), "--ray", "local", "--quiet"]) == 0
    assert json.loads((tmp_path / "ok" / "detections.json").read_text())["boxes"].keys() == {"a.png"}
    (folder / "broken.png").write_bytes(b"not a png")
    with pytest.raises(CrackalError, match="broken.png"):
        api.detect_predict(run, folder, tmp_path / "out", ray="local", progress=False)


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    from crackal.classify.workflow import train_classifier

    root = tmp_path_factory.mktemp("ray_cls")
    rng = np.random.default_rng(0)
    for label in ("Negative", "Positive"):
        (root / "patches" / label).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(root / "patches" / label / f"{i}.png")
    train_classifier(root / "patches", root / "run", val=0.25, test=0.25, size=32, widths=[4, 8], epochs=1, batch_size=4)
    return root / "run"


def test_classify_predict_on_ray_writes_what_the_local_path_writes(ray_cluster, classifier, images, tmp_path):
    from crackal.classify.workflow import predict_sliding

    local = predict_sliding(classifier, images, tmp_path / "local", window=32, stride=8)
    assert main(["classify", "predict", str(classifier), str(images), "--out", str(tmp_path / "ray"), "--window", "32",
                 "--stride", "8", "--ray", "local", "--ray-actors", "2"]) == 0
    on_ray = json.loads((tmp_path / "ray" / "predictions.json").read_text())["images"]
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in on_ray] == [
        {k: v for k, v in r.items() if k != "seconds"} for r in local]
    _same_pngs(tmp_path / "local", tmp_path / "ray", ["heatmaps", "overlays"])
    for path in (tmp_path / "local" / "windows").iterdir():
        assert (tmp_path / "ray" / "windows" / path.name).read_text() == path.read_text()
