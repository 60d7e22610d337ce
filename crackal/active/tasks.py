"""What an active-learning round does differs by task (segmentation masks or detection
boxes); the loop asks the task object of its project instead of branching on the name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from crackal.active.config import ALConfig
from crackal.active.detection_round import DetectionRounds
from crackal.active.segmentation_round import SegmentationRounds
from crackal.active.store import ImageRecord, ProjectStore
from crackal.data.boxes import ImageBoxes
from crackal.progress import Progress


class RoundTask(Protocol):
    """What the loop needs from a task (segmentation or detection) to run its rounds."""

    label_folder: str  # where an exported queue keeps the pre-annotations to correct: masks/ or boxes/

    def train_and_evaluate(self, store: ProjectStore, config: ALConfig, round_: int, run_dir: Path,
                           progress: Progress) -> tuple[Path, dict, dict]:
        """Train on the labelled images; (best checkpoint, held-out metrics, extra round columns)."""

    def score_pool(self, store: ProjectStore, config: ALConfig, round_: int, run_dir: Path, checkpoint: Path,
                   pool: list[ImageRecord], progress: Progress, ray: str | None = None,
                   features: list[np.ndarray] | None = None) -> np.ndarray:
        """One acquisition score per ``pool`` image, higher = label it sooner (on Ray at ``ray``
        when given and the task supports it); a ``features`` list receives each image's predicted-mask
        cost features (``crackal.acquisition.cost``, segmentation only)."""

    def embeddings(self, checkpoint: str | Path, records: list[ImageRecord]) -> np.ndarray:
        """One embedding row per image, for diverse batches (segmentation only)."""

    def predictor(self, checkpoint: str | Path) -> Callable[[np.ndarray], np.ndarray | ImageBoxes]:
        """The checkpoint's model loaded once, as a function from an image to its label (class mask, or boxes)."""

    def prelabels(self, checkpoint: str | Path, images: dict[str, np.ndarray]) -> dict:
        """The model's label of each image (a class mask, or boxes), by image name."""

    def write_prelabel(self, folder: Path, record: ImageRecord, prelabel, class_names: list[str],
                       size: tuple[int, int]) -> Path:
        """Write a pre-annotation (or an empty label when it is None) into ``folder``."""


TASKS: dict[str, RoundTask] = {"segmentation": SegmentationRounds(), "detection": DetectionRounds()}
