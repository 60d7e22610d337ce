"""Scores: segmentation pixel metrics, detection mAP and pixel measures, patch classification,
change detection, learning curves."""
