"""A project's queue through Label Studio and back: export tasks with pre-annotations, turn the
predictions into annotations the way Label Studio does, import them."""

import json

import numpy as np
import pytest

from crackal import api
from crackal.active import label_studio
from crackal.active.label_studio import config_labels, label_config
from crackal.active.store import open_project
from crackal.data.boxes import ImageBoxes, read_voc
from crackal.data.io import read_image, read_raw_mask
from crackal.errors import CrackalError, OptionError
from crackal.interop.label_studio import rle_to_mask
from tests.active.conftest import make_project


def annotate_like_label_studio(tasks: list[dict], email: str = "ana@example.org") -> list[dict]:
    """What a Label Studio JSON export holds after a labeller accepted every pre-annotation."""
    exported = []
    for number, task in enumerate(tasks, 1):
        annotation = {"id": number, "completed_by": {"id": 1, "email": email}, "was_cancelled": False,
                      "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:00:00Z",
                      "result": task["predictions"][0]["result"]}
        exported.append({"id": number, "data": task["data"], "annotations": [annotation], "predictions": task["predictions"]})
    return exported


def truth_as_prelabels(monkeypatch, store):
    """Pre-annotations with a known answer: each queued image's ground truth."""
    truth = {r.name: (read_raw_mask(r.truth_path) > 0).astype(np.uint8) for r, _, _ in store.queue()}
    monkeypatch.setattr(label_studio, "latest_prelabels", lambda store, config, records: {r.name: truth[r.name] for r in records})
    return truth


def test_export_then_import_stores_the_pre_annotations(tmp_path, al_data, monkeypatch):
    project = make_project(tmp_path / "p", al_data, simulation=False)
    store, config = open_project(project)
    truth = truth_as_prelabels(monkeypatch, store)
    store.close()
    tasks_file = api.al_export_queue(project, tmp_path / "ls", format="label-studio")
    tasks = json.loads(tasks_file.read_text())
    assert len(tasks) == len(truth) and (tmp_path / "ls" / "images").is_dir()
    assert config_labels((tmp_path / "ls" / "label_config.xml").read_text()) == {"crack"}
    for task in tasks:
        url = task["data"]["image"]
        assert url.startswith("/data/local-files/?d=") and read_image("/" + url.split("?d=")[1]).shape[:2] == (64, 64)
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == "crackal-p-round0"
        (result,) = prediction["result"]  # one brush result: the crack class
        assert (rle_to_mask(result["value"]["rle"], 64, 64) == truth[task["data"]["crackal_name"]].astype(bool)).all()
    export = tmp_path / "export.json"
    export.write_text(json.dumps(annotate_like_label_studio(tasks)))
    assert api.al_import(project, export, format="label-studio") == len(tasks)
    store, _ = open_project(project)
    labelled = store.labelled()
    store.close()
    assert {r.labelled_by for r in labelled} == {"ana@example.org"}
    for record in labelled:
        assert (read_raw_mask(record.label_path) > 0).astype(np.uint8).tolist() == truth[record.name].tolist()
    with pytest.raises(CrackalError, match="already have labels"):
        api.al_import(project, export, format="label-studio")  # a person's labels are not replaced unasked
    assert api.al_import(project, export, format="label-studio", overwrite=True) == len(tasks)


def test_scores_put_the_most_wanted_image_first_for_label_studio(tmp_path, al_data):
    project = make_project(tmp_path / "p", al_data, iterations=2)
    api.al_step(project)  # simulation: labels from the truth, a round, a scored queue
    tasks = json.loads(api.al_export_queue(project, tmp_path / "ls", format="label-studio").read_text())
    scores = [t["data"]["acquisition_score"] for t in tasks]
    assert scores == sorted(scores, reverse=True) and [t["data"]["crackal_rank"] for t in tasks] == list(range(len(tasks)))
    served = [t["predictions"][0]["score"] for t in tasks]
    assert served[0] == 0.0 and served[-1] == 1.0 and served == sorted(served)  # Label Studio serves the lowest first
    assert {t["predictions"][0]["model_version"] for t in tasks} == {"crackal-p-round1"}  # the round that made the model
    for task in tasks:  # the real model's pre-annotation, whatever it found, decodes at the image's size
        for result in task["predictions"][0]["result"]:
            assert rle_to_mask(result["value"]["rle"], 64, 64).shape == (64, 64)


def test_latest_annotation_wins_and_skipped_tasks_are_left_out(tmp_path, al_data, monkeypatch):
    project = make_project(tmp_path / "p", al_data, simulation=False)
    store, _ = open_project(project)
    truth = truth_as_prelabels(monkeypatch, store)
    store.close()
    tasks = annotate_like_label_studio(json.loads(api.al_export_queue(project, tmp_path / "ls", format="label-studio").read_text()))
    first, second = tasks[0], tasks[1]
    newer = {**first["annotations"][0], "id": 9, "result": [], "updated_at": "2026-12-02T08:00:00Z",
             "completed_by": {"id": 2, "email": "ben@example.org"}}
    first["annotations"].append(newer)  # a second, later annotation: an empty mask by ben
    second["annotations"][0]["was_cancelled"] = True  # skipped in Label Studio
    export = tmp_path / "export.json"
    export.write_text(json.dumps(tasks))
    assert api.al_import(project, export, format="label-studio") == len(tasks) - 1
    store, _ = open_project(project)
    labels = {r.name: r for r in store.labelled()}
    store.close()
    assert second["data"]["crackal_name"] not in labels
    latest = labels[first["data"]["crackal_name"]]
    assert latest.labelled_by == "ben@example.org" and not read_raw_mask(latest.label_path).any()
    assert len(truth) == len(tasks)


def test_bad_exports_change_nothing(tmp_path, al_data, monkeypatch):
    project = make_project(tmp_path / "p", al_data, simulation=False)
    store, _ = open_project(project)
    truth_as_prelabels(monkeypatch, store)
    store.close()
    tasks = annotate_like_label_studio(json.loads(api.al_export_queue(project, tmp_path / "ls", format="label-studio").read_text()))
    export = tmp_path / "export.json"

    def refused(tasks, match):
        export.write_text(json.dumps(tasks) if not isinstance(tasks, str) else tasks)
        with pytest.raises(CrackalError, match=match):
            api.al_import(project, export, format="label-studio")
        store, _ = open_project(project)
        assert not store.labelled() and not list((project / "labels").iterdir())
        store.close()

    stranger = json.loads(json.dumps(tasks))
    stranger[-1]["data"] = {"image": "/data/upload/1/4f2a9c1e-elsewhere.png"}
    refused(stranger, "no image called 'elsewhere'")
    resized = json.loads(json.dumps(tasks))
    resized[-1]["annotations"][0]["result"][0].update(original_width=128, original_height=32)
    refused(resized, "drawn on a 128x32 image")
    renamed = json.loads(json.dumps(tasks))
    renamed[-1]["annotations"][0]["result"][0]["value"]["brushlabels"] = ["pothole"]
    refused(renamed, "one of the project's classes")
    refused("{not json", "not a Label Studio JSON export")
    refused({"tasks": []}, "a list of tasks")
    with pytest.raises(CrackalError, match="--format label-studio"):
        api.al_import(project, export)  # a JSON file given as a folder of masks
    with pytest.raises(OptionError, match="format must be one of files, label-studio"):
        api.al_import(project, export, format="coco")


def test_detection_queue_round_trips_as_rectangles(tmp_path, al_data, monkeypatch):
    project = make_project(tmp_path / "p", al_data, task="detection", strategy="random", simulation=False)
    store, _ = open_project(project)
    boxes = {r.name: ImageBoxes([[3, 5, 30, 41], [40.5, 0, 64, 12]], [1, 1]) for r, _, _ in store.queue()}
    store.close()
    monkeypatch.setattr(label_studio, "latest_prelabels", lambda store, config, records: {r.name: boxes[r.name] for r in records})
    tasks = json.loads(api.al_export_queue(project, tmp_path / "ls", format="label-studio").read_text())
    assert "<RectangleLabels" in (tmp_path / "ls" / "label_config.xml").read_text()
    first = tasks[0]["predictions"][0]["result"][0]
    assert first["type"] == "rectanglelabels"
    assert (first["value"]["x"], first["value"]["y"], first["value"]["width"]) == pytest.approx((3 / 64 * 100, 5 / 64 * 100, 27 / 64 * 100))
    export = tmp_path / "export.json"
    export.write_text(json.dumps(annotate_like_label_studio(tasks)))
    assert api.al_import(project, export, format="label-studio") == len(tasks)
    store, _ = open_project(project)
    for record in store.labelled():
        stored = read_voc(record.label_path, ["background", "crack"])
        assert np.allclose(stored.boxes, boxes[record.name].boxes, atol=0.51) and stored.labels.tolist() == [1, 1]
    store.close()


def test_label_config_names_every_class_for_both_tools():
    xml = label_config(["background", "crack", "pot & hole"])
    assert config_labels(xml) == {"crack", "pot &amp; hole"} or config_labels(xml) == {"crack", "pot & hole"}
    assert "<BrushLabels" in xml and "<PolygonLabels" in xml and 'value="$image"' in xml


def test_command_line_round_trip(tmp_path, al_data, monkeypatch, capsys):
    from crackal.cli import main

    project = make_project(tmp_path / "p", al_data, simulation=False)
    out = tmp_path / "ls"
    assert main(["al", "export-queue", str(project), str(out), "--format", "label-studio",
                 "--url-prefix", "http://files.local/queue/", "--document-root", str(out)]) == 0
    assert "crackal al import" in capsys.readouterr().out
    tasks = json.loads((out / "tasks.json").read_text())
    assert all(t["data"]["image"].startswith("http://files.local/queue/images/") for t in tasks)
    for task in tasks:  # before any round there is no model, so no prediction: the labeller paints from scratch
        assert "predictions" not in task
        task["predictions"] = [{"result": []}]
    (tmp_path / "export.json").write_text(json.dumps(annotate_like_label_studio(tasks)))
    assert main(["al", "import", str(project), str(tmp_path / "export.json"), "--format", "label-studio"]) == 0
    assert f"imported {len(tasks)} labels" in capsys.readouterr().out
    assert main(["al", "import", str(project), str(tmp_path / "export.json"), "--format", "xml"]) == 1
    assert "--format must be one of files, label-studio" in capsys.readouterr().err


def test_labelling_times_survive_a_round_trip_through_label_studio(tmp_path, al_data, monkeypatch):
    from crackal.active.effort import Effort
    from crackal.active.labels import NewLabel, store_labels

    project = make_project(tmp_path / "p", al_data, simulation=False)
    store, config = open_project(project)
    queued = [record for record, _, _ in store.queue()][:3]
    masks = {r.name: (read_raw_mask(r.truth_path) > 0).astype(np.uint8) for r in queued}
    times = {queued[0].name: 41.5, queued[1].name: 12.0}  # the third image's label was not timed
    store_labels(store, [NewLabel(r, r.name, masks[r.name], "ana", Effort(times[r.name], 5, 1, "edited") if r.name in times
                                  else None) for r in queued], config.class_names)
    store.close()
    tasks_file = api.al_export(project, tmp_path / "ls", format="label-studio")
    tasks = {t["data"]["crackal_name"]: t for t in json.loads(tasks_file.read_text())}
    assert set(tasks) == set(masks)
    for name, task in tasks.items():
        (annotation,) = task["annotations"]
        assert annotation.get("lead_time") == times.get(name) and annotation["completed_by"]["email"] == "ana"
        (result,) = annotation["result"]
        assert (rle_to_mask(result["value"]["rle"], 64, 64) == masks[name].astype(bool)).all()
    # Label Studio adds its own times to new annotations; a broken one keeps the label, not the time
    exported = list(tasks.values())
    exported[0]["annotations"][0]["lead_time"] = -5
    export = tmp_path / "export.json"
    export.write_text(json.dumps(exported))
    assert api.al_import(project, export, format="label-studio", overwrite=True) == 3
    store, _ = open_project(project)
    efforts = {row["name"]: row for row in store.label_efforts()}
    store.close()
    broken = exported[0]["data"]["crackal_name"]
    expected = {name: seconds for name, seconds in times.items() if name != broken}
    imported = {name: row["active_seconds"] for name, row in efforts.items() if row["source"] == "label-studio"}
    assert imported == expected and all(efforts[n]["prelabel"] == "unknown" for n in imported)


def test_an_export_without_labels_says_so(tmp_path, al_data):
    project = make_project(tmp_path / "p", al_data, simulation=False)
    with pytest.raises(CrackalError, match="no labelled pool image"):
        api.al_export(project, tmp_path / "ls", format="label-studio")
    with pytest.raises(OptionError, match="format"):
        api.al_export(project, tmp_path / "ls", format="cvat")
