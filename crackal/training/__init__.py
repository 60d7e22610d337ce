"""Training runs: the shared epoch loop, the segmentation and detector trainers, configs,
checkpoints, evaluation and the precision-recall flow."""
