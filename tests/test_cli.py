"""The command line end to end on tiny data, and its handling of user errors."""

import json

import numpy as np
import pytest
from PIL import Image

from crackal.cli import main

TINY = ["--base-channels", "8", "--depth", "3", "--crop-size", "64", "--epochs", "2", "--batch-size", "4", "--device", "cpu"]


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
        (["train", "{data}", "--out", "{tmp}/r", "--encoder-weights", "{tmp}/none.pt"], "need an smp architecture"),
        (["train", "{data}", "--downscale", "3"], "--downscale must be one of"),
        (["train", "{data}", "--val", "2", "--test", "2"], "no training image"),
    ],
)
def test_user_errors_are_one_line_without_traceback(argv, message, tmp_path, tiny_dataset, capsys):
    argv = [a.format(tmp=tmp_path, data=tiny_dataset) for a in argv]
    if "--out" not in argv and argv[0] == "train":
        argv += ["--out", str(tmp_path / "run")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.startswith("error:")


def test_bad_mask_error_through_the_cli(tiny_dataset, tmp_path, capsys):
    Image.fromarray(np.full((32, 48), 77, np.uint8)).save(tiny_dataset / "masks" / "img2.png")
    assert main(["train", str(tiny_dataset), "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "img2.png" in err and "unexpected mask values" in err


def test_usage_error_exit_code(capsys):
    assert main(["train", "--epochs", "many"]) == 2
