"""Segmentation models: ``create_model(arch, num_classes, ...)``."""

from crackal.models.factory import create_model, load_weights
from crackal.models.segmenter import Segmenter
from crackal.options import ARCHS, DOWNSCALES, check_model_options

__all__ = ["ARCHS", "DOWNSCALES", "Segmenter", "check_model_options", "create_model", "load_weights"]
