"""Change detection between two inspections: the Siamese U-Net trained on tiles of
bi-temporal pairs, and active learning on those tiles (``crackal change ...``)."""
