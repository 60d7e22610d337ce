import pytest

from crackal.active.config import ALConfig
from crackal.active.labels import import_labels
from crackal.active.loop import run_loop, run_round
from crackal.active.report import project_history, write_report
from crackal.active.store import open_project
from crackal.cli import main
from crackal.data.boxes import ImageBoxes, read_voc, write_voc
from crackal.errors import CrackalError

from .conftest import make_project

DETECT = dict(task="detection", strategy="disagreement", epochs=1, batch_size=2, iterations=3)


@pytest.mark.slow
def test_detection_rounds_select_report_and_resume(tmp_path, al_data):
    project = make_project(tmp_path / "p", al_data, **DETECT)
    first = run_round(project)
    assert first.labelled == 4 and len(first.selected) == 3
    assert 0 <= first.metrics["map_50"] <= 1 and "segmentation_error" in first.metrics
    assert first.pool_uncertainty is not None and 0 <= first.pool_uncertainty <= 1
    assert main(["al", "export-queue", str(project), str(tmp_path / "queue")]) == 0  # the detector's boxes as pre-annotations
    exported = sorted((tmp_path / "queue" / "boxes").glob("*.xml"))
    assert [p.stem for p in exported] == sorted(first.selected)
    read_voc(exported[0], ["background", "crack"])
    assert run_loop(project, rounds=2) == "2 rounds done"
    history = project_history(project)
    assert history["task"] == "detection" and history["labelled"] == [4, 7]
    report = write_report({"disagreement": [history]}, tmp_path / "report")
    assert "mAP@0.5" in report.read_text()
    assert main(["al", "status", str(project)]) == 0


def test_detection_options_are_checked():
    with pytest.raises(CrackalError, match="strategy must be one of disagreement, random"):
        ALConfig(task="detection", strategy="bald")
    with pytest.raises(CrackalError, match="mc_dropout or ensemble"):
        ALConfig(task="detection", strategy="disagreement", method="mc_batchnorm")
    with pytest.raises(CrackalError, match="task must be one of segmentation, detection"):
        ALConfig(task="boxes")


def test_box_labels_import_checked_before_writing(tmp_path, al_data):
    project = make_project(tmp_path / "p", al_data, task="detection", strategy="random", simulation=False)
    store, _ = open_project(project)
    try:
        name = store.queue()[0][0].name
        names = ["background", "crack"]
        write_voc(tmp_path / "labels" / "boxes" / f"{name}.xml", ImageBoxes([[1, 2, 20, 30]], [1]), names, f"{name}.png", (64, 64))
        (tmp_path / "labels" / "boxes" / "nope.xml").write_text((tmp_path / "labels" / "boxes" / f"{name}.xml").read_text())
        with pytest.raises(CrackalError, match="no image called 'nope'"):
            import_labels(store, tmp_path / "labels", 2)
        assert not store.labelled()
        (tmp_path / "labels" / "boxes" / "nope.xml").unlink()
        assert import_labels(store, tmp_path / "labels", 2) == 1
        assert store.labelled()[0].label_path.suffix == ".xml"
    finally:
        store.close()
