"""``crackal al export --format coco``: a project's labels out as a COCO dataset, read back."""

import json

import numpy as np
import pytest
from pycocotools.coco import COCO

from crackal import api
from crackal.active.labels import import_labels, label_from_ground_truth
from crackal.active.store import open_project
from crackal.cli import main
from crackal.data.boxes import ImageBoxes, read_coco, write_voc
from crackal.data.io import read_raw_mask, to_class_mask
from crackal.errors import CrackalError
from crackal.interop.coco import read_masks

from .conftest import make_project


def test_export_coco_reads_back_as_the_project_labels(tmp_path, al_data, capsys):
    project = make_project(tmp_path / "p", al_data)
    store, config = open_project(project)
    try:
        assert label_from_ground_truth(store, len(config.class_names)) == 4  # the oracle labels the first queue
        labelled = store.labelled()
    finally:
        store.close()
    out = tmp_path / "coco"
    assert main(["al", "export", str(project), str(out), "--format", "coco"]) == 0
    assert "wrote 4 labelled images" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "images").iterdir()) == sorted(r.path.name for r in labelled)
    masks, names = read_masks(out / "annotations.json", config.class_names, image_dir=out / "images")  # sizes checked too
    assert names == config.class_names and len(masks) == 4
    for record in labelled:
        label = to_class_mask(read_raw_mask(record.label_path), len(names), record.label_path)
        assert (masks[record.path.name] == label).all()
    coco = COCO(str(out / "annotations.json"))
    assert len(coco.getImgIds()) == 4 and coco.getCatIds() == [1]
    assert coco.dataset["annotations"] and sum(a["area"] for a in coco.dataset["annotations"]) == sum(int(m.sum()) for m in masks.values())

    assert main(["al", "export", str(project), str(out)]) == 1
    assert "already holds a COCO export" in capsys.readouterr().err
    assert main(["al", "export", str(project), str(out), "--force"]) == 0
    assert main(["al", "export", str(project), str(tmp_path / "other"), "--format", "yolo"]) == 1
    assert "--format must be one of coco, label-studio; got 'yolo'" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


def test_export_boxes_and_nothing_labelled(tmp_path, al_data):
    project = make_project(tmp_path / "p", al_data, task="detection", strategy="random", simulation=False)
    with pytest.raises(CrackalError, match="no labelled images yet"):
        api.al_export(project, tmp_path / "coco")
    store, _ = open_project(project)
    try:
        name = store.queue()[0][0].name
        write_voc(tmp_path / "labels" / "boxes" / f"{name}.xml", ImageBoxes([[1, 2, 20, 30]], [1]), ["background", "crack"],
                  f"{name}.png", (64, 64))
        assert import_labels(store, tmp_path / "labels", 2) == 1
    finally:
        store.close()
    path = api.al_export(project, tmp_path / "coco")
    [annotation] = json.loads(path.read_text())["annotations"]
    assert annotation["bbox"] == [1, 2, 19, 28] and annotation["segmentation"] == []
    boxes, names = read_coco(path)
    assert names == ["background", "crack"] and np.array_equal(boxes[name].boxes, [[1, 2, 20, 30]])
