import json

import numpy as np
from PIL import Image

from crackal.active.loop import run_loop
from crackal.active.report import project_history, summarise, write_report
from crackal.active.store import ProjectStore
from crackal.data.synth import SynthOptions, write_synthetic_dataset
from tests.active.conftest import make_project

NAMES = ["background", "crack", "patch"]


def three_class_data(root):
    """Synthetic images with extra classes, merged into background / crack / patch."""
    data = write_synthetic_dataset(root, count=18, size=64, seed=5, options=SynthOptions(extra_classes=True))
    for path in (data / "masks").iterdir():
        mask = np.array(Image.open(path))
        Image.fromarray(np.minimum(mask, 2).astype(np.uint8)).save(path)
    (data / "classes.json").write_text(json.dumps(NAMES))
    return data


def test_multiclass_rounds_and_per_class_shares(tmp_path):
    data = three_class_data(tmp_path / "data")
    root = make_project(tmp_path / "p", data, class_names=NAMES, strategy="bald")
    assert run_loop(root, rounds=2) == "2 rounds done"
    store = ProjectStore(root)
    rounds, labelled = store.rounds(), store.labelled()
    store.close()
    assert len(rounds[-1]["class_weights"]) == 3
    assert {"f1", "precision", "recall"} <= set(rounds[-1]["metrics"]["strict"])
    history = project_history(root)
    assert set(history["batch_class_images"]) == {"crack", "patch"}
    for index, name in ((1, "crack"), (2, "patch")):  # by hand, from the saved label masks
        by_batch = {}
        for record in labelled:
            by_batch.setdefault(record.labelled_round, []).append(index in np.unique(np.array(Image.open(record.label_path))))
        assert history["batch_class_images"][name] == [np.mean(by_batch[b]) for b in sorted(by_batch)]
    summary = summarise({"bald": [history]})
    assert summary["strategies"]["bald"]["batch_class_images"]["patch"] == list(np.round(history["batch_class_images"]["patch"], 3))
    report = write_report({"bald": [history]}, tmp_path / "report").read_text()
    assert "| bald | patch |" in report
