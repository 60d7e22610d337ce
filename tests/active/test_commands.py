"""The active-learning commands end to end through the CLI."""

import json

from crackal.cli import main

FAST = ["--epochs", "1", "--crop-size", "64"]


def test_al_commands(tmp_path, al_data, capsys):
    project = tmp_path / "proj"
    assert main(["al", "init", str(project), "--images", str(al_data), "--heldout", "4", "--initial", "4", "--step", "3", *FAST]) == 0
    assert main(["al", "step", str(project)]) == 0
    assert main(["al", "status", str(project)]) == 0
    out = capsys.readouterr().out
    assert "4 labelled, 3 queued" in out and "rounds" in out
    assert main(["al", "export-queue", str(project), str(tmp_path / "queue")]) == 0
    assert len(list((tmp_path / "queue" / "masks").iterdir())) == 3  # pre-annotations from the round-1 model
    assert main(["al", "run", str(project), "--rounds", "2"]) == 0
    assert main(["al", "report", str(project)]) == 0
    assert (project / "report" / "learning_curves.png").is_file()


def test_al_errors(tmp_path, al_data, capsys):
    assert main(["al", "init", str(tmp_path / "p"), "--images", str(al_data), "--strategy", "guess"]) == 1
    assert "--strategy must be one of bald, entropy, variance, margin, random; got 'guess'" in capsys.readouterr().err
    assert not (tmp_path / "p" / "project.db").exists()
    assert main(["al", "status", str(tmp_path / "none")]) == 1
    assert "no crackal project" in capsys.readouterr().err
    images_only = tmp_path / "imgs"
    images_only.mkdir()
    assert main(["al", "init", str(tmp_path / "q"), "--images", str(images_only)]) == 1
    assert "held-out set" in capsys.readouterr().err
    assert main(["al", "init", str(tmp_path / "r"), "--images", str(al_data), "--downscale", "3"]) == 1
    assert "--downscale must be one of 1, 2, 4, 8" in capsys.readouterr().err


def test_simulate_command(tmp_path, al_data):
    out = tmp_path / "sim"
    argv = ["simulate", str(al_data), "--out", str(out), "--strategy", "bald", "--strategy", "random", "--rounds", "2",
            "--seeds", "1", "--initial", "4", "--step", "2", "--heldout", "4", "--iterations", "3", *FAST]
    assert main(argv) == 0
    summary = json.loads((out / "report.json").read_text())
    assert set(summary["strategies"]) == {"bald", "random"} and summary["reference_f1"] is not None
    assert summary["strategies"]["bald"]["labelled"] == [4, 6]
    assert main(argv) == 0  # finished runs are reused, not redone
