"""The prediction review viewer's layers for any pool or held-out image: the current model's
class mask, its defect probability, the per-pixel uncertainty of the project's heuristic
(BALD by default, from the same MC samples as the pool scoring: the project's method and
number of iterations) and the ground truth or the current label. Layers are PNGs cached per
round under ``PROJECT/.cache/review/``: class masks and boxes as transparent RGBA overlays in
the class colours, maps as grey images."""

from __future__ import annotations

import io
import math
import os
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from crackal.active.config import ALConfig
from crackal.active.store import ImageRecord, ProjectStore
from crackal.app.prelabels import cache_folder, latest_round
from crackal.data.boxes import ImageBoxes
from crackal.data.io import read_image, read_raw_mask, to_class_mask
from crackal.inference.render import class_color
from crackal.models.tiling import tile_boxes

LAYERS = ("prediction", "probability", "uncertainty", "truth")
MODEL_LAYERS = ("prediction", "probability", "uncertainty")
_MODEL = threading.Lock()


def png(array: np.ndarray) -> bytes:
    """PNG bytes of a grey, RGB or RGBA ``uint8`` array (fast compression)."""
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(out, format="PNG", compress_level=1)
    return out.getvalue()


def mask_overlay(mask: np.ndarray, alpha: int = 255) -> np.ndarray:
    """RGBA ``(H, W, 4)``: each defect class in its colour, background transparent, ignored
    pixels (255) grey."""
    out = np.zeros((*mask.shape, 4), np.uint8)
    for index in np.unique(mask):
        if index == 0:
            continue
        colour = np.array([128, 128, 128]) if index == 255 else class_color(int(index))
        out[mask == index] = [*colour.astype(np.uint8), alpha]
    return out


def boxes_overlay(boxes: ImageBoxes, size: tuple[int, int], width: int = 2) -> np.ndarray:
    """RGBA ``(H, W, 4)`` with each box outlined in its class colour."""
    height, img_width = size
    out = np.zeros((height, img_width, 4), np.uint8)
    line = max(width, round(max(size) / 400))
    for (x0, y0, x1, y1), label in zip(boxes.boxes.round().astype(int), boxes.labels):
        colour = [*class_color(int(label)).astype(np.uint8), 255]
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(img_width, x1), min(height, y1)
        for top, bottom, left, right in ((y0, y0 + line, x0, x1), (y1 - line, y1, x0, x1),
                                         (y0, y1, x0, x0 + line), (y0, y1, x1 - line, x1)):
            out[max(0, top):max(0, bottom), max(0, left):max(0, right)] = colour
    return out


def truth_layer(record: ImageRecord, config: ALConfig) -> bytes | None:
    """The ground truth (held-out set, simulations) or else the current label, as an overlay."""
    from crackal.active.detection_round import read_label_boxes

    path = record.truth_path or record.label_path
    if path is None:
        return None
    if config.task == "detection":
        boxes, _ = read_label_boxes(path, config.class_names)
        return png(boxes_overlay(boxes, read_image(record.path).shape[:2]))
    return png(mask_overlay(to_class_mask(read_raw_mask(path), len(config.class_names), path)))


def _uncertainty(model, image: np.ndarray, config: ALConfig, tile: int = 512) -> np.ndarray:
    """Per-pixel scores of the project's heuristic (BALD for ``random``), scaled so that 255 is
    the largest possible value of BALD or entropy, ln(C)."""
    import torch

    from crackal.acquisition.heuristics import pixel_scores
    from crackal.data.transforms import to_tensor
    from crackal.uncertainty.sampling import mc_dropout

    heuristic = config.strategy if config.strategy in ("bald", "entropy", "variance", "margin") else "bald"
    tensor = to_tensor(image)
    height, width = image.shape[:2]
    out = np.zeros((height, width), np.float32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        for top, left, bottom, right in tile_boxes(height, width, tile, 0):
            stats = mc_dropout(model, tensor[None, :, top:bottom, left:right], config.iterations)
            out[top:bottom, left:right] = pixel_scores(stats, heuristic)[0].float().cpu().numpy()
    scale = 1.0 if heuristic in ("variance", "margin") else math.log(len(config.class_names))
    return (255 * np.clip(out / scale, 0, 1)).round().astype(np.uint8)


def _model_layers(checkpoint: Path, record: ImageRecord, config: ALConfig) -> dict[str, bytes]:
    image = read_image(record.path)
    if config.task == "detection":
        from crackal.models.detect import detect_image
        from crackal.runs.checkpoint import load_detector

        detector, state = load_detector(checkpoint)
        boxes = detect_image(detector, image).above(state.get("threshold", 0.5))
        return {"prediction": png(boxes_overlay(boxes, image.shape[:2]))}
    from crackal.inference.render import class_mask_from_probs, probability_png
    from crackal.models.predict import predict_image
    from crackal.runs.checkpoint import load_model

    model, state = load_model(checkpoint)
    probs = predict_image(model, image)
    layers = {"prediction": png(mask_overlay(class_mask_from_probs(probs, state.get("threshold", 0.5)))),
              "probability": png(probability_png(probs))}
    layers["uncertainty"] = png(_uncertainty(model, image, config))
    return layers


def review_layer(store: ProjectStore, config: ALConfig, record: ImageRecord, layer: str) -> bytes | None:
    """One layer's PNG, or None where the image or the project has none (no round yet, no
    ground truth, no probability map for a detection project)."""
    if layer == "truth":
        return truth_layer(record, config)
    round_ = latest_round(store)
    if round_ is None or (config.task == "detection" and layer != "prediction"):
        return None
    folder = cache_folder(store, "review", round_)
    path = folder / f"{record.id}-{layer}.png"
    if not path.is_file():
        with _MODEL:
            if not path.is_file():
                checkpoint = next(r["checkpoint"] for r in store.rounds() if r["round"] == round_)
                for name, data in _model_layers(checkpoint, record, config).items():
                    tmp = folder / f".{record.id}-{name}.png.tmp"
                    tmp.write_bytes(data)
                    os.replace(tmp, folder / f"{record.id}-{name}.png")
    return path.read_bytes()
