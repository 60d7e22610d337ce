"""The Python API on synthetic data: it learns, evaluates on the saved split, predicts."""

import json

import pytest

from crackal import api
from crackal.data.dataset import SegmentationDataset
from crackal.data.layout import find_pairs
from crackal.data.splits import load_split, pick
from crackal.errors import CrackalError
from crackal.training.evaluation import darkness_baseline


@pytest.mark.slow
def test_a_short_training_beats_a_darkness_detector(tmp_path):
    data = api.synth(tmp_path / "data", count=40, size=128, seed=5)
    api.train(data, tmp_path / "run", val=6, test=10, epochs=14, crop_size=128, batch_size=8,
              samples_per_epoch=48, lr=3e-3, device="cpu", progress=False)
    scores = api.evaluate(tmp_path / "run", tolerances=(0, 2), progress=False)
    split = load_split(tmp_path / "run" / "split.json")
    test_set = SegmentationDataset(pick(find_pairs(data), split["test"], "test"), 2)
    baseline = darkness_baseline(test_set, ["background", "crack"], tolerances=(0, 2))
    model_f1 = scores["classes"]["crack"]["tol2"]["ods"]["f1"]
    naive_f1 = baseline["classes"]["crack"]["tol2"]["ods"]["f1"]
    model_auc, naive_auc = scores["classes"]["crack"]["auc"], baseline["classes"]["crack"]["auc"]
    print(f"F1 at 2 px: model {model_f1:.3f}, darkness {naive_f1:.3f}; AUC: model {model_auc:.3f}, darkness {naive_auc:.3f}")
    assert model_f1 > naive_f1 + 0.05, (model_f1, naive_f1)
    # pixel AUC is dominated by the easy background, where darkness alone does well (about 0.93 against the
    # model's 0.89 on two CPUs): only a wide bound here, the F1 comparison above is the test of learning
    assert model_auc > 0.75, model_auc


def test_evaluate_on_another_folder_scores_every_image(tmp_path, synthetic_dataset):
    api.train(synthetic_dataset, tmp_path / "run", val=2, test=2, epochs=1, arch="unet", base_channels=8, depth=3,
              crop_size=64, device="cpu", progress=False)
    other = api.synth(tmp_path / "other", count=5, size=64, seed=9)
    scores = api.evaluate(tmp_path / "run", other, tolerances=(0,), out=tmp_path / "scores.json", progress=False)
    assert scores["images"] == 5 and scores["split"] == "all"
    assert json.loads((tmp_path / "scores.json").read_text())["classes"]["crack"]["tol0"]["ods"]["f1"] >= 0


def test_multiclass_training_and_prediction(tmp_path):
    data = api.synth(tmp_path / "data", count=8, size=64, seed=2, extra_classes=True)
    api.train(data, tmp_path / "run", val=2, test=2, epochs=1, arch="unet", base_channels=8, depth=3, crop_size=64,
              device="cpu", progress=False)
    records = api.predict(tmp_path / "run", data / "images", tmp_path / "pred", progress=False)
    assert len(records) == 8 and "pothole_area_px" in records[0] and "manhole_area_px" in records[0]
    scores = api.evaluate(tmp_path / "run", tolerances=(0,), progress=False)
    assert set(scores["classes"]) == {"crack", "pothole", "patch", "manhole"}


def test_predict_bad_inputs(tmp_path, synthetic_dataset):
    api.train(synthetic_dataset, tmp_path / "run", val=2, test=2, epochs=1, arch="unet", base_channels=8, depth=3,
              crop_size=64, device="cpu", progress=False)
    images = tmp_path / "imgs"
    images.mkdir()
    with pytest.raises(CrackalError, match="no images"):
        api.predict(tmp_path / "run", images, tmp_path / "p")
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (images / "good.png").write_bytes((synthetic_dataset / "images" / "synth_000.png").read_bytes())
    with pytest.raises(CrackalError, match="broken.jpg"):
        api.predict(tmp_path / "run", images, tmp_path / "p", progress=False)
    assert len(api.predict(tmp_path / "run", images, tmp_path / "p", skip_invalid=True, progress=False)) == 1
    with pytest.raises(CrackalError, match="gsd is the ground sampling distance"):
        api.predict(tmp_path / "run", images, tmp_path / "p", gsd=-1)
    with pytest.raises(CrackalError, match="threshold must be between 0 and 1"):
        api.predict(tmp_path / "run", images, tmp_path / "p", threshold=1.5)


def test_resume_without_a_run(tmp_path, synthetic_dataset):
    with pytest.raises(CrackalError, match="nothing to resume"):
        api.train(synthetic_dataset, tmp_path / "empty", resume=True)


def test_import_is_light_and_the_api_is_reachable():
    import subprocess
    import sys

    code = "import sys, crackal; assert 'torch' not in sys.modules; print(crackal.train.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "crackal.api.segmentation"
