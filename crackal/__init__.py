"""crackal: crack and surface-defect segmentation trained with few labels."""

__version__ = "0.1.0"
