"""``crackal train`` on a COCO dataset: the labels rasterised once into RUN/coco_masks/, then a
tiny epoch as with a mask folder; resume and evaluate find the data again."""

import json

import numpy as np
from PIL import Image

from crackal.cli import main
from crackal.interop.coco import coco_dataset

TINY = [
    "--arch", "unet", "--base-channels", "8", "--depth", "3", "--crop-size", "64", "--epochs", "1", "--batch-size", "4", "--device", "cpu",
        "--val", "1", "--test", "1", "--quiet"]


def coco_data(root, count=6):
    """``root/images/*.png`` and ``root/annotations.json``: a crack line and a pothole square in each image."""
    rng = np.random.default_rng(0)
    labels = []
    for i in range(count):
        image = rng.integers(90, 160, size=(64, 64, 3), dtype=np.uint8)
        mask = np.zeros((64, 64), np.uint8)
        mask[20 + i, 5:60] = 1
        mask[40:50, 10 + i:20 + i] = 2
        image[mask > 0] //= 3
        (root / "images").mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(root / "images" / f"im{i}.png")
        labels.append((f"im{i}.png", (64, 64), mask))
    (root / "annotations.json").write_text(json.dumps(coco_dataset(labels, ["background", "crack", "pothole"])))
    return {name: mask for name, _, mask in labels}


def test_train_on_a_coco_dataset(tmp_path, capsys):
    data, run = tmp_path / "data", tmp_path / "run"
    masks = coco_data(data)
    assert main(["train", str(data), "--out", str(run), *TINY]) == 0  # DATA/annotations.json found by itself
    for name, mask in masks.items():
        assert (np.asarray(Image.open(run / "coco_masks" / name)) == mask).all()
    assert json.loads((run / "config.json").read_text())["class_names"] == ["background", "crack", "pothole"]
    saved = json.loads((run / "data.json").read_text())
    assert saved["masks"] == str((run / "coco_masks").resolve()) and saved["coco"] == str((data / "annotations.json").resolve())
    assert main(["train", str(data), "--out", str(run), "--resume", "--quiet"]) == 0  # the folder the user named is accepted
    assert main(["evaluate", str(run), "--quiet"]) == 0
    capsys.readouterr()

    assert main(["train", str(data / "images"), "--out", str(tmp_path / "r2"), "--coco", str(data / "annotations.json"),
                 "--masks", str(data), *TINY]) == 1
    assert "either as a mask folder (--masks) or as a COCO file (--coco)" in capsys.readouterr().err
    assert main(["train", str(data / "images"), "--out", str(tmp_path / "r3"), "--coco", str(data / "annotations.json"),
                 "--classes", "background,crack", *TINY]) == 1
    assert "categories 'pothole' (id 2) are not among the classes ['crack']" in capsys.readouterr().err
