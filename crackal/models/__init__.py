"""Segmentation models: ``create_model(arch, num_classes, ...)``."""

from crackal.models.factory import ARCHS, DOWNSCALES, create_model, load_weights
from crackal.models.segmenter import Segmenter

__all__ = ["ARCHS", "DOWNSCALES", "Segmenter", "create_model", "load_weights"]
