"""The command line end to end on tiny data, and its handling of user errors."""

import json

import numpy as np
import pytest
from PIL import Image

from crackal.cli import main

TINY = [
    "--arch", "unet", "--base-channels", "8", "--depth", "3", "--crop-size", "64", "--epochs", "2", "--batch-size", "4", "--device", "cpu"]


@pytest.mark.parametrize("command", [[], ["synth"], ["train"], ["evaluate"], ["predict"], ["demo"]])
def test_help(command, capsys):
    assert main(command + ["--help"]) == 0
    assert "Usage" in capsys.readouterr().out


def test_synth_train_evaluate_predict(tmp_path, capsys):
    data, run, preds = tmp_path / "data", tmp_path / "run", tmp_path / "preds"
    assert main(["synth", str(data), "--count", "12", "--size", "64", "--seed", "3"]) == 0
    assert main(["train", str(data), "--out", str(run), "--val", "3", "--test", "3", *TINY]) == 0
    assert json.loads((run / "split.json").read_text())["test"]
    assert main(["evaluate", str(run), "--tolerance", "2"]) == 0
    out = capsys.readouterr().out
    assert "ODS-F1 strict" in out and "ODS-F1 tolerance 2px" in out and "ROC-AUC" in out
    scores = json.loads((run / "evaluation_test.json").read_text())
    assert scores["images"] == 3 and "tol2" in scores["classes"]["crack"]

    big = np.random.default_rng(0).integers(0, 255, (300, 700, 3), dtype=np.uint8)  # larger than a tile
    Image.fromarray(big).save(tmp_path / "big.jpg")
    assert main(["predict", str(run), str(tmp_path / "big.jpg"), "--out", str(preds), "--gsd", "0.001", "--tile-size", "256"]) == 0
    mask = np.asarray(Image.open(preds / "masks" / "big.png"))
    assert mask.shape == (300, 700) and set(np.unique(mask)) <= {0, 255}
    assert np.asarray(Image.open(preds / "overlays" / "big.png")).shape == (300, 700, 3)
    assert (preds / "probabilities" / "big.png").is_file()
    record = json.loads((preds / "measurements.json").read_text())["images"][0]
    assert record["crack_area_m2"] == pytest.approx(record["crack_area_px"] * 1e-6)

    # a second train into the same folder must not overwrite it; --resume continues it
    assert main(["train", str(data), "--out", str(run), *TINY]) == 1
    assert "--resume" in capsys.readouterr().err
    assert main(["train", str(data), "--out", str(run), "--resume"]) == 0
    assert len(json.loads((run / "metrics.json").read_text())["history"]) == 2


@pytest.mark.parametrize(
    "argv,message",
    [
        (["train", "{tmp}/missing"], "dataset folder not found"),
        (["evaluate", "{tmp}/nothing.pt"], "checkpoint not found"),
        (["predict", "{tmp}/nothing.pt", "{data}/images"], "checkpoint not found"),
        (["predict", "{tmp}/nothing.pt", "{tmp}/no_such_folder"], "folder not found"),
        (["synth", "{tmp}/s", "--size", "abc"], "bad size"),
        (["synth", "{tmp}/s", "--surface", "gravel"], "--surface must be one of"),
        (["train", "{data}", "--arch", "vit"], "--arch must be one of"),
        (["train", "{data}", "--loss", "ce+l2"], "--loss 'ce+l2' is not a sum"),
        (["train", "{data}", "--balance", "oversample"], "--balance must be one of"),
        (["train", "{data}", "--balance", "prf", "--loss", "adaptive"], "has none of them"),
        (["train", "{data}", "--tile-filter", "8"], "--tile-filter"),
        (["train", "{data}", "--out", "{tmp}/r", "--encoder-weights", "{tmp}/none.pt"], "weights file not found"),
        (["train", "{data}", "--downscale", "3"], "--downscale must be one of"),
        (["train", "{data}", "--val", "2", "--test", "2"], "no training image"),
        (["train", "{data}", "--val", "1.5"], "--val is a share below 1 or a whole number of images, got 1.5"),
        (["train", "{data}", "--depth", "9"], "--depth must be between 1 and 6 poolings, got 9"),
        (["train", "{data}", "--arch", "unet", "--base-channels", "0"], "--base-channels must be at least 1, got 0"),
        (["train", "{data}", "--time-limit", "0"], "--time-limit must be positive"),
        (["evaluate", "{run}", "--tolerance", "-5"], "--tolerance are distances in px and must be >= 0"),
        (["predict", "{run}", "{data}/images", "--tile-size", "-5"], "--tile-size must be at least 32 px, got -5"),
        (["predict", "{run}", "{data}/images", "--tile-size", "0"], "--tile-size must be at least 32 px, got 0"),
        (["predict", "{run}", "{data}/images", "--tile-size", "64"], "--overlap must be less than the tile size (64 px), got 64"),
        (["simulate", "{data}", "--seeds", "0"], "--seeds must be at least 1, got 0"),
        (["change", "al", "{tmp}/pairs", "--seeds", "0"], "--seeds must be at least 1, got 0"),
        (["al", "init", "{tmp}/p", "--images", "{data}", "--epochs", "0"], "--epochs must be at least 1, got 0"),
        (["train", "{run}/../data", "--out", "{run}", "--resume", "--epochs", "7"], "these differ: epochs=7 (saved 1)"),
        (["train", "{tmp}/other", "--out", "{run}", "--resume"], "--resume continues a run as it was"),
    ],
)
def test_user_errors_are_one_line_without_traceback(argv, message, tmp_path, tiny_dataset, trained_run, capsys):
    from crackal import change_synth, synth

    if "{tmp}/pairs" in argv:
        change_synth(tmp_path / "pairs", count=4, size=64)
    if "{tmp}/other" in argv:
        synth(tmp_path / "other", count=4, size=64)
    argv = [a.format(tmp=tmp_path, data=tiny_dataset, run=trained_run) for a in argv]
    if "--out" not in argv and argv[0] == "train":
        argv += ["--out", str(tmp_path / "run")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.startswith("error:")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A one-epoch run on a tiny dataset (the folder it was trained from is DATA of each test: same content)."""
    from tests.conftest import make_dataset

    root = tmp_path_factory.mktemp("trained")
    data = make_dataset(root / "data")
    assert main(["train", str(data), "--out", str(root / "run"), "--val", "1", "--test", "1", "--epochs", "1", "--quiet",
                 "--arch", "unet", "--base-channels", "4", "--depth", "2", "--crop-size", "32", "--device", "cpu"]) == 0
    return root / "run"


def test_bad_mask_error_through_the_cli(tiny_dataset, tmp_path, capsys):
    Image.fromarray(np.full((32, 48), 77, np.uint8)).save(tiny_dataset / "masks" / "img2.png")
    assert main(["train", str(tiny_dataset), "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "img2.png" in err and "unexpected mask values" in err


def test_usage_error_exit_code(capsys):
    assert main(["train", "--epochs", "many"]) == 2


def test_two_synth_sets_with_prefixes_make_one_labelling_project(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "pool"), "--count", "4", "--size", "32", "--prefix", "pool"]) == 0
    assert main(["synth", str(tmp_path / "held"), "--count", "2", "--size", "32", "--prefix", "held", "--seed", "1"]) == 0
    assert sorted(p.name for p in (tmp_path / "held" / "images").iterdir()) == ["held_000.png", "held_001.png"]
    assert main(["al", "init", str(tmp_path / "project"), "--images", str(tmp_path / "pool" / "images"), "--initial", "2"]) == 1
    assert "needs a held-out set with masks" in capsys.readouterr().err  # and says which options give it
    assert main(["al", "init", str(tmp_path / "project"), "--images", str(tmp_path / "pool" / "images"), "--initial", "2",
                 "--heldout-images", str(tmp_path / "held" / "images"), "--heldout-masks", str(tmp_path / "held" / "masks")]) == 0
    assert main(["synth", str(tmp_path / "bad"), "--prefix", "../x"]) == 1
    assert "prefix" in capsys.readouterr().err
