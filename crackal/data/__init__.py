"""Datasets: images, masks and boxes read from the layouts users bring, splits, training crops,
synthetic data."""
