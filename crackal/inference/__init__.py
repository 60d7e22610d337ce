"""Using trained models on images: prediction outputs, overlays and maps, defect measurements,
detect-then-segment."""
