"""``crackal change synth`` and ``crackal change al`` end to end on tiny pairs."""

import json

from crackal.cli import main


def test_change_synth_and_al(tmp_path, capsys):
    data, out = tmp_path / "pairs", tmp_path / "al"
    assert main(["change", "synth", str(data), "--count", "8", "--size", "64", "--change-probability", "1", "--seed", "2"]) == 0
    assert len(list((data / "masks").glob("*.png"))) == 8
    args = ["change", "al", str(data), "--out", str(out), "--strategy", "variance:mc_batchnorm", "--strategy", "random",
            "--seeds", "1", "--rounds", "2", "--initial", "2", "--step", "2", "--tile", "16", "--heldout", "3",
            "--steps", "2", "--epochs", "0", "--base-channels", "4", "--depth", "2", "--iterations", "2"]
    assert main(args) == 0
    summary = json.loads((out / "report.json").read_text())
    assert summary["strategies"]["random"]["labelled"] == [4, 6]
    assert (out / "report.md").is_file() and "report:" in capsys.readouterr().out


def test_change_user_errors(tmp_path, capsys):
    assert main(["change", "al", str(tmp_path)]) == 1
    assert "needs folders A/" in capsys.readouterr().err
    assert main(["change", "synth", str(tmp_path / "x"), "--count", "2", "--change-probability", "2"]) == 1
    assert "between 0 and 1" in capsys.readouterr().err
