"""Segmentation models: ``create_model(arch, num_classes, ...)``."""

from crackal.models.factory import ARCHS, create_model, load_weights
from crackal.models.segmenter import Segmenter

__all__ = ["ARCHS", "Segmenter", "create_model", "load_weights"]
