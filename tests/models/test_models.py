"""Shared model suite: every architecture gets these checks by subclassing ``ModelSuite``."""

import pytest
import torch
from torch import nn

from crackal.errors import CrackalError, OptionError
from crackal.models import create_model


class ModelSuite:
    arch = "unet"
    kwargs: dict = {"base_channels": 8, "depth": 3}
    channels = 3  # input channels (a Siamese model takes two stacked images)

    def build(self, num_classes=2, **extra):
        return create_model(self.arch, num_classes, **{**self.kwargs, **extra})

    @pytest.mark.parametrize("num_classes,channels", [(2, 1), (4, 4)])
    def test_output_shape_any_size(self, num_classes, channels):
        model = self.build(num_classes).eval()
        out = model(torch.randn(2, self.channels, 45, 70))
        assert out.shape == (2, channels, 45, 70) and out.dtype == torch.float32

    def test_gradients_reach_the_first_layer(self):
        model = self.build().train()
        model(torch.randn(2, self.channels, 64, 64)).mean().backward()
        first = next(p for p in model.parameters() if p.ndim == 4)
        assert first.grad is not None and first.grad.abs().sum() > 0

    def test_dropout_sits_before_the_last_conv_only(self):
        model = self.build(dropout=0.5)
        assert isinstance(model.dropout, nn.Dropout2d) and model.dropout.p == 0.5
        assert not any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in model.trunk.modules())

    def test_head_is_the_only_stochastic_part(self):
        model = self.build(dropout=0.5).eval()
        model.dropout.train()
        x = torch.randn(1, self.channels, 64, 64)
        with torch.no_grad():
            feats = model.features(x)
            assert torch.equal(feats, model.features(x))
            assert not torch.equal(model.head(feats), model.head(feats))

    def test_local_weights_round_trip(self, tmp_path):
        model = self.build()
        torch.save(model.state_dict(), tmp_path / "w.pt")
        again = create_model(self.arch, 2, weights=tmp_path / "w.pt", **self.kwargs)
        for a, b in zip(model.state_dict().values(), again.state_dict().values()):
            assert torch.equal(a, b)


class TestUNet(ModelSuite):
    def test_default_is_compact(self):
        params = sum(p.numel() for p in create_model("unet").parameters())
        assert 1.5e6 < params < 2.5e6


class TestDownscaledUNet(ModelSuite):
    kwargs = {"base_channels": 8, "depth": 3, "downscale": 4}

    def test_runs_the_plain_network_on_the_shrunk_image(self):
        torch.manual_seed(0)
        small = self.build().eval()
        plain = create_model("unet", 2, base_channels=8, depth=3).eval()
        plain.load_state_dict(small.state_dict())
        x = torch.randn(1, 3, 64, 96)
        with torch.no_grad():
            expected = nn.functional.interpolate(plain(nn.functional.avg_pool2d(x, 4)), scale_factor=4, mode="bilinear")
            torch.testing.assert_close(small(x), expected)

    def test_own_scale_logits_are_the_full_size_ones_before_upsampling(self):
        model = self.build(4).eval()
        x = torch.randn(2, 3, 64, 96)
        with torch.no_grad():
            own = model(x, own_scale=True)
            assert own.shape == (2, 4, 16, 24)
            torch.testing.assert_close(model(x), nn.functional.interpolate(own, scale_factor=4, mode="bilinear"))
        assert model(torch.randn(1, 3, 45, 70), own_scale=True).shape == (1, 4, 11, 17)  # padded, cropped back


class TestSmpUNet(ModelSuite):
    arch, kwargs = "smp_unet", {"encoder": "resnet18"}


class TestImageNetLite0UNet(ModelSuite):
    """The default model of crackal train: its ImageNet encoder renormalises the input first."""

    arch, kwargs = "smp_unet", {"encoder": "tu-tf_efficientnet_lite0", "encoder_weights": "imagenet"}

    def test_the_training_default_is_this_model(self):
        from crackal.runs.config import TrainConfig

        config = TrainConfig()
        assert (config.arch, config.encoder, config.encoder_weights) == ("smp_unet", self.kwargs["encoder"], "imagenet")
        assert config.input_norm == [0.5, 0.5]
        compact = TrainConfig(arch="unet")  # auto: the compact U-Net has no ImageNet weights
        assert compact.encoder_weights is None and compact.input_norm is None
        old = TrainConfig.from_dict({"arch": "smp_unet", "encoder": self.kwargs["encoder"]})  # a run saved before the option
        assert old.encoder_weights is None and old.input_norm is None


class TestLightDecoderLite0UNet(ModelSuite):
    """The default model with a narrower decoder (the speed option of docs/benchmarks/field_speed.md)."""

    arch, kwargs = "smp_unet", {"encoder": "tu-tf_efficientnet_lite0", "encoder_weights": "imagenet",
                                "decoder_channels": [64, 32, 16, 8, 8]}

    def test_the_decoder_has_these_widths_and_fewer_weights_and_the_run_rebuilds_it(self, tmp_path):
        from crackal.runs.config import TrainConfig

        light, full = create_model(self.arch, **self.kwargs), create_model(self.arch, encoder=self.kwargs["encoder"])
        widths = [block.conv2[0].out_channels for block in light.trunk.decoder.blocks]
        assert widths == [64, 32, 16, 8, 8]
        count = lambda m: sum(p.numel() for p in m.trunk.decoder.parameters())  # noqa: E731
        assert count(light) < count(full) / 5
        config = TrainConfig.from_dict({**TrainConfig(decoder_channels=[64, 32, 16, 8, 8]).to_dict()})
        assert create_model(**config.model_kwargs()).state_dict().keys() == light.state_dict().keys()
        for bad, message in (({"decoder_channels": [64, 32]}, "five widths"), ({"arch": "fpn", "decoder_channels": [8] * 5}, "not of fpn")):
            with pytest.raises(OptionError, match=message):
                TrainConfig(**bad)


class TestUNetPlusPlus(ModelSuite):
    arch, kwargs = "unetplusplus", {"encoder": "resnet18"}


class TestFPN(ModelSuite):
    arch, kwargs = "fpn", {"encoder": "resnet18"}


class TestDeepLabV3Plus(ModelSuite):
    arch, kwargs = "deeplabv3plus", {"encoder": "resnet18"}


class TestPSPNet(ModelSuite):
    arch, kwargs = "pspnet", {"encoder": "resnet18"}


def test_bad_downscale():
    with pytest.raises(CrackalError, match="downscale must be one of 1, 2, 4, 8"):
        create_model("unet", downscale=3)


def test_unknown_arch():
    with pytest.raises(CrackalError, match="arch must be one of .*; got 'segformer'"):
        create_model("segformer")


def test_weights_that_do_not_fit(tmp_path):
    torch.save(create_model("unet", 2, base_channels=8, depth=3).state_dict(), tmp_path / "w.pt")
    with pytest.raises(CrackalError, match="does not fit this model"):
        create_model("unet", 2, weights=tmp_path / "w.pt")


def test_encoder_weights_that_cannot_apply(tmp_path):
    torch.save(create_model("unet", 2, base_channels=8, depth=3).state_dict(), tmp_path / "unet.pt")
    with pytest.raises(CrackalError, match="does not fit this model"):  # another depth and width
        create_model("unet", encoder_weights=tmp_path / "unet.pt")
    with pytest.raises(CrackalError, match="not siamese_unet"):
        create_model("siamese_unet", encoder_weights=tmp_path / "unet.pt")
    with pytest.raises(CrackalError, match="no tensor in"):
        create_model("smp_unet", encoder="resnet18", encoder_weights=tmp_path / "unet.pt")


def test_missing_and_corrupt_weights(tmp_path):
    with pytest.raises(CrackalError, match="weights file not found"):
        create_model("unet", weights=tmp_path / "none.pt")
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    with pytest.raises(CrackalError, match="cannot load weights"):
        create_model("unet", weights=tmp_path / "bad.pt")


def test_encoder_weights_load_into_the_encoder_only(tmp_path):
    donor = create_model("fpn", 2, encoder="resnet18")
    torch.save(donor.trunk.encoder.state_dict(), tmp_path / "enc.pt")
    model = create_model("fpn", 2, encoder="resnet18", encoder_weights=tmp_path / "enc.pt")
    assert torch.equal(model.trunk.encoder.conv1.weight, donor.trunk.encoder.conv1.weight)
    assert not torch.equal(model.classifier.weight, donor.classifier.weight)


def test_own_scale_changes_nothing_without_downscale():
    model = create_model("unet", 3, base_channels=8, depth=3).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x, own_scale=True), model(x))
