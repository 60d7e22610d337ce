"""crackal predict --defects end to end: GeoTIFFs in windows with their CRS, photos with GPS EXIF,
the condition summary per image and per segment. The model is a stand-in that calls dark
pixels cracks, so every answer is known in advance."""

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from crackal import api
from crackal.cli import main
from crackal.inference import outputs
from crackal.inference.defects import defects_by_blocks
from crackal.inference.geo import offset_lonlat, read_gps
from crackal.inference.raster import mask_reader

rasterio = pytest.importorskip("rasterio")
from rasterio.transform import Affine  # noqa: E402

ORIGIN_X, ORIGIN_Y, PIXEL = 500000.0, 4200000.0, 0.01  # UTM 33N, 1 cm pixels


def from_origin(x, y, xsize, ysize):
    """The north-up geotransform with its top-left corner at (x, y)."""
    return Affine(xsize, 0.0, x, 0.0, -ysize, y)


def dark_is_crack(image):
    """A stand-in model: P(crack) = 1 on dark pixels."""
    crack = (image.mean(-1) < 60).astype(np.float32)
    return np.stack([1 - crack, crack])


@pytest.fixture(autouse=True)
def stand_in_model(monkeypatch):
    """The run's predictor, with the stand-in in place of its network (on every prediction path)."""
    real = outputs.make_predictor

    def stand_in(checkpoint, **options):
        predictor, config, threshold = real(checkpoint, **options)
        predictor.model, predictor.function = None, dark_is_crack
        return predictor, config, threshold

    monkeypatch.setattr(outputs, "make_predictor", stand_in)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run folder with an untrained compact U-Net (prediction is stubbed out)."""
    from crackal.models import create_model
    from crackal.runs.config import TrainConfig

    config = TrainConfig(arch="unet", base_channels=4, depth=2)
    root = tmp_path_factory.mktemp("run")
    (root / "checkpoints").mkdir()
    torch.save({"model": create_model(**config.model_kwargs()).state_dict(), "config": config.to_dict(), "threshold": 0.5},
               root / "checkpoints" / "best.pt")
    return root


def write_geotiff(path, image):
    profile = {"driver": "GTiff", "height": image.shape[0], "width": image.shape[1], "count": 3, "dtype": "uint8",
               "crs": "EPSG:32633", "transform": from_origin(ORIGIN_X, ORIGIN_Y, PIXEL, PIXEL)}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(image.transpose(2, 0, 1))
    return path


def road(height=512, width=512):
    image = np.full((height, width, 3), 200, np.uint8)
    image[100:103, 50 : min(450, width - 50)] = 20  # a transverse crack, 3 px wide (400 px long in 512 px)
    return image


def test_geotiff_in_windows_keeps_its_crs_and_geojson_is_in_it(run, tmp_path):
    source = write_geotiff(tmp_path / "ortho.tif", road())
    out = tmp_path / "pred"
    api.predict(run, source, out, defects=True, window=128, overlap=16, progress=False)

    with rasterio.open(out / "masks" / "ortho.tif") as mask:
        assert mask.crs.to_epsg() == 32633 and mask.transform == from_origin(ORIGIN_X, ORIGIN_Y, PIXEL, PIXEL)
        assert mask.block_shapes == [(512, 512)] and mask.compression.name.lower() == "deflate"
        values = mask.read(1)
    assert set(np.unique(values)) == {0, 255} and (values[100:103, 50:450] == 255).all() and values.sum() == 255 * 1200
    with rasterio.open(out / "probabilities" / "ortho.tif") as prob:
        assert prob.crs.to_epsg() == 32633

    collection = json.loads((out / "defects.geojson").read_text())
    assert collection["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32633"
    (feature,) = collection["features"]
    props = feature["properties"]
    assert props["type"] == "transverse" and props["severity"] == "high"  # 3 px x 10 mm = 30 mm: above 19 mm
    assert props["length_m"] == pytest.approx(4.0, rel=0.02) and props["width_mean_mm"] == pytest.approx(30, abs=5)
    # by hand: pixel (x, y) -> (500000 + 0.01 x, 4200000 - 0.01 y); the centre line runs along y = 101.5
    coords = np.array(feature["geometry"]["coordinates"] if feature["geometry"]["type"] == "LineString"
                      else sum(feature["geometry"]["coordinates"], []))
    assert coords[:, 1] == pytest.approx(4199998.985, abs=0.011)
    assert coords[:, 0].min() == pytest.approx(500000.50, abs=0.03) and coords[:, 0].max() == pytest.approx(500004.50, abs=0.03)
    with (out / "defects.csv").open() as f:
        (row,) = list(csv.DictReader(f))
    # the centroid: columns 50..449 -> x 250.0; rows 100..102 -> y 101.5
    assert float(row["map_x"]) == pytest.approx(500002.5, abs=1e-6)
    assert float(row["map_y"]) == pytest.approx(4199998.985, abs=1e-6)
    assert row["crs"] == "EPSG:32633"
    measured = json.loads((out / "measurements.json").read_text())["images"][0]
    assert measured["crack_area_px"] == 1200 and measured["crack_area_m2"] == pytest.approx(0.12)
    assert (out / "overlays" / "ortho.png").is_file()

    # the mask read back in blocks smaller than the crack: still one crack
    with mask_reader(out / "masks" / "ortho.tif", 2) as read:
        assert len(defects_by_blocks(read, 512, 512, ["background", "crack"], block=128)) == 1


def test_sixteen_bit_raster_with_nodata(run, tmp_path):
    image = road(256, 256).astype(np.uint16) * 100
    profile = {"driver": "GTiff", "height": 256, "width": 256, "count": 3, "dtype": "uint16", "nodata": 0,
               "crs": "EPSG:32633", "transform": from_origin(ORIGIN_X, ORIGIN_Y, PIXEL, PIXEL)}
    image[:, 200:] = 0  # nodata: no defect there
    with rasterio.open(tmp_path / "deep.tif", "w", **profile) as dst:
        dst.write(image.transpose(2, 0, 1))
    api.predict(run, tmp_path / "deep.tif", tmp_path / "out", defects=True, window=64, overlap=8, progress=False)
    (feature,) = json.loads((tmp_path / "out" / "defects.geojson").read_text())["features"]
    assert feature["properties"]["bbox"] == [50, 100, 200, 103]


def write_photo(path, lat, lon, heading=None, taken=None, image=None):
    exif = Image.Exif()
    gps = {1: "N" if lat >= 0 else "S", 2: dms(abs(lat)), 3: "E" if lon >= 0 else "W", 4: dms(abs(lon))}
    if heading is not None:
        gps.update({16: "T", 17: float(heading)})
    exif[0x8825] = gps
    if taken:
        exif[0x0132] = taken
    Image.fromarray(road(200, 300) if image is None else image).save(path, exif=exif, quality=95)
    return path


def dms(value):
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    return (float(degrees), float(minutes), round((value - degrees - minutes / 60) * 3600, 4))


def test_exif_gps_is_read_from_a_written_photo(tmp_path):
    path = write_photo(tmp_path / "p.jpg", 48.8566, 2.3522, heading=271.5)
    info = read_gps(path)
    assert info["lat"] == pytest.approx(48.8566, abs=1e-6) and info["lon"] == pytest.approx(2.3522, abs=1e-6)
    assert info["heading_deg"] == pytest.approx(271.5)
    south_west = read_gps(write_photo(tmp_path / "q.jpg", -33.8688, -70.6693))
    assert south_west["lat"] == pytest.approx(-33.8688, abs=1e-6) and south_west["lon"] == pytest.approx(-70.6693, abs=1e-6)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "none.jpg")
    assert read_gps(tmp_path / "none.jpg") is None


def test_gps_photo_point_and_defect_offsets(run, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    lat, lon = 45.0, 7.0
    image = np.full((200, 300, 3), 200, np.uint8)
    image[100:103, 150:250] = 20
    write_photo(photos / "a.jpg", lat, lon, heading=90, image=image)  # the top of the image faces east
    out = tmp_path / "pred"
    api.predict(run, photos, out, gsd=0.01, defects=True, progress=False)
    collection = json.loads((out / "defects.geojson").read_text())
    assert "crs" not in collection  # WGS84 longitude / latitude
    crack = next(f for f in collection["features"] if f["properties"].get("feature") != "image")
    image = next(f for f in collection["features"] if f["properties"].get("feature") == "image")
    assert image["geometry"]["coordinates"] == pytest.approx([lon, lat])
    assert image["properties"]["defects"] == 1
    # centroid (200, 101.5) in a 300 x 200 photo at 1 cm/px: 0.5 m right of the centre and 0.015 m
    # below it; the top faces east, so up is east and right is south
    props = crack["properties"]
    assert props["offset_east_m"] == pytest.approx(-0.015, abs=1e-3)
    assert props["offset_north_m"] == pytest.approx(-0.5, abs=1e-3)
    points = np.array(crack["geometry"]["coordinates"])
    # the crack runs north-south: 1 m of latitude is about 1 / 111,132 degrees at 45 degrees north,
    # 1 m of longitude 1 / (111,132 cos 45) degrees (to 0.2 %)
    assert points[:, 1].min() == pytest.approx(lat - 1.0 / 111132, abs=2e-7)  # from 1.0 m south ...
    assert points[:, 1].max() == pytest.approx(lat, abs=2e-7)  # ... to the centre line
    assert points[:, 0].mean() == pytest.approx(lon - 0.015 / (111132 * np.cos(np.radians(45))), abs=5e-8)
    assert offset_lonlat(lon, lat, [0.0], [-1.0])[0, 1] == pytest.approx(lat - 1.0 / 111132, abs=2e-8)
    # without a GSD the defect sits at the photo's position
    api.predict(run, photos, tmp_path / "nogsd", defects=True, progress=False)
    features = json.loads((tmp_path / "nogsd" / "defects.geojson").read_text())["features"]
    assert all(f["geometry"]["coordinates"] == pytest.approx([lon, lat]) for f in features)


def test_condition_per_segment_csv_and_chainage(run, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    north = 1 / 111132  # degrees of latitude per metre at 45 N
    for i, metres in enumerate((0, 60, 130)):
        image = road(200, 300)
        if i == 2:
            image[20:180, 270:272] = 20  # a longitudinal crack too
        write_photo(photos / f"f{i}.jpg", 45.0 + metres * north, 7.0, taken=f"2026:01:01 10:00:0{i}", image=image)
    out = tmp_path / "chain"
    api.predict(run, photos, out, gsd=0.002, defects=True, chainage=100, progress=False)
    with (out / "condition_segments.csv").open() as f:
        segments = {r["segment"]: r for r in csv.DictReader(f)}
    assert set(segments) == {"0-100 m", "100-200 m"}
    assert segments["0-100 m"]["images"] == "2" and segments["0-100 m"]["transverse_count"] == "2"
    assert segments["100-200 m"]["longitudinal_count"] == "1"
    surveyed = 200 * 300 * 0.002**2
    length = float(segments["100-200 m"]["crack_length_m"])
    assert float(segments["100-200 m"]["crack_density_m_per_m2"]) == pytest.approx(length / surveyed, rel=1e-3)
    with (out / "condition_images.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 3
    report = (out / "condition.md").read_text()
    assert "| transverse |" in report and "100-200 m" in report and "severity_map.png" in report
    assert (out / "condition.html").read_text().startswith("<!doctype html>")
    assert Image.open(out / "severity_map.png").size[0] > 100

    table = tmp_path / "segments.csv"
    table.write_text("image,segment\nf0.jpg,A\nf1,B\n")
    api.predict(run, photos, tmp_path / "seg", defects=True, segments=table, progress=False)
    with (tmp_path / "seg" / "condition_segments.csv").open() as f:
        assert {r["segment"]: r["images"] for r in csv.DictReader(f)} == {"A": "1", "B": "1", "unassigned": "1"}
    with (tmp_path / "seg" / "defects.csv").open() as f:
        assert {r["segment"] for r in csv.DictReader(f)} == {"A", "B", "unassigned"}


def test_cli_predict_defects_in_pixel_coordinates(run, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(road(200, 300)).save(photos / "plain.png")
    out = tmp_path / "pred"
    assert main(["predict", str(run), str(photos), "--out", str(out), "--defects", "--gsd", "0.001", "--severity", "bridge",
                 "--quiet"]) == 0
    assert "defects.csv" in capsys.readouterr().out
    collection = json.loads((out / "defects.geojson").read_text())
    assert collection["coordinates"] == "pixel"
    (feature,) = collection["features"]
    assert feature["properties"]["severity"] == "high"  # 3 mm: above the bridge manual's 1.3 mm
    assert np.array(feature["geometry"]["coordinates"])[:, 1] == pytest.approx(101.5, abs=1.01)
    data = json.loads((out / "defects.json").read_text())
    assert data["options"]["severity"]["bounds_mm"] == [0.3, 1.3] and data["defects"][0]["lines"]
    assert (out / "severity_map.png").is_file() and not (out / "condition_segments.csv").exists()


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--severity", "wide"], "--severity must be pavement, bridge or widths in mm"),
        (["--severity-width", "mode"], "--severity-width must be one of mean, median, p95, max"),
        (["--gap", "-1"], "--gap is a distance in px and must be >= 0"),
        (["--chainage", "0"], "--chainage must be a positive length in metres"),
        (["--window", "10"], "--window must be at least 64 px"),
        (["--segments", "{tmp}/missing.csv"], "segments file not found"),
        (["--segments", "{tmp}/s.csv", "--chainage", "50"], "--segments and --chainage are two ways"),
        (["--segments", "{tmp}/x.png"], "needs a header with the columns image and segment"),
    ],
)
def test_cli_defect_option_errors(extra, message, run, tmp_path, capsys):
    Image.fromarray(road(64, 64)).save(tmp_path / "x.png")
    (tmp_path / "s.csv").write_text("image,segment\nx.png,A\n")
    argv = ["predict", str(run), str(tmp_path / "x.png"), "--out", str(tmp_path / "o"), "--defects", "--quiet"]
    assert main(argv + [e.replace("{tmp}", str(tmp_path)) for e in extra]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_plain_tiffs_small_as_images_large_in_windows(run, tmp_path):
    import tifffile

    photos = tmp_path / "tiffs"
    photos.mkdir()
    tifffile.imwrite(photos / "small.tif", road(200, 300))
    big = np.full((300, 600, 3), 200, np.uint8)
    big[150:153, 20:580] = 20
    tifffile.imwrite(photos / "big.tif", big)
    out = tmp_path / "pred"
    records = api.predict(run, photos, out, defects=True, window=128, progress=False)  # 180,000 px > 4 x 128^2 > 60,000
    assert {r["image"] for r in records} == {"small.tif", "big.tif"}
    assert (out / "masks" / "small.png").is_file() and (out / "masks" / "big.tif").is_file()
    with rasterio.open(out / "masks" / "big.tif") as mask:
        assert mask.crs is None and mask.read(1)[150:153, 20:580].min() == 255
    collection = json.loads((out / "defects.geojson").read_text())
    assert collection["coordinates"] == "pixel"
    lengths = {f["properties"]["image"]: f["properties"]["length_px"] for f in collection["features"]}
    assert lengths["big.tif"] == pytest.approx(560, rel=0.02) and lengths["small.tif"] == pytest.approx(200, rel=0.02)


def test_segments_need_defects(run, tmp_path, capsys):
    Image.fromarray(road(64, 64)).save(tmp_path / "x.png")
    (tmp_path / "s.csv").write_text("image,segment\nx.png,A\n")
    assert main(["predict", str(run), str(tmp_path / "x.png"), "--out", str(tmp_path / "o"), "--segments",
                 str(tmp_path / "s.csv"), "--quiet"]) == 1
    assert "--segments makes a condition summary per segment: add --defects" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()



def test_a_folder_of_photos_and_a_geotiff_in_one_run(run, tmp_path):
    """Photos go through the overlapped loader (or one by one), the GeoTIFF window by window; the
    records and defects come out in file order, the same both ways."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i, height in enumerate((200, 260)):
        image = road(height, 300)
        image[150 + 20 * i : 152 + 20 * i, 60:200] = 20  # a second crack, a different one per photo
        Image.fromarray(image).save(folder / f"b{i}.png")
    write_geotiff(folder / "a_ortho.tif", road())
    results = {}
    for workers in (0, 2):
        out = tmp_path / f"workers{workers}"
        records = api.predict(run, folder, out, defects=True, window=128, workers=workers, progress=False)
        assert [r["image"] for r in records] == ["a_ortho.tif", "b0.png", "b1.png"]
        results[workers] = json.loads((out / "defects.json").read_text())["defects"]
    assert results[0] == results[2]
    assert [d["image"] for d in results[0]].count("b1.png") == 2 and any(d["image"] == "a_ortho.tif" for d in results[0])
