"""The detection half of an active-learning round: train a RetinaNet on the labelled boxes,
score it on the held-out set, and score the pool by instance-level disagreement.

Labels are VOC ``.xml`` box files or masks (boxes derived with ``boxes_from_mask``), so a
simulation can reuse segmentation ground truth and a labeller can draw boxes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from crackal.active.config import ALConfig
from crackal.active.store import ImageRecord, ProjectStore
from crackal.data.boxes import ImageBoxes, boxes_from_mask, read_voc, write_voc
from crackal.data.detection import BoxSample, DetectionDataset
from crackal.data.io import read_image, read_raw_mask, to_class_mask
from crackal.errors import CrackalError
from crackal.models.detect import detect_image, image_tensor
from crackal.progress import Progress
from crackal.runs.checkpoint import load_detector
from crackal.runs.config import DetectionConfig
from crackal.training.detection import evaluate_detector, train_detector
from crackal.uncertainty.detection import detection_uncertainty, sample_ensemble, sample_head_dropout


def read_label_boxes(path: Path, class_names: list[str]) -> tuple[ImageBoxes, Path | None]:
    """Boxes of a label file (VOC ``.xml``, or a mask), and the mask path when it is one."""
    if path.suffix.lower() == ".xml":
        return read_voc(path, class_names), None
    mask = to_class_mask(read_raw_mask(path), len(class_names), path)
    return boxes_from_mask(mask, len(class_names)), path


def detection_recipe(config: ALConfig, round_: int, member: int = 0) -> DetectionConfig:
    """The training config of a detection round (of one ensemble member): ``ALConfig`` checks
    that a detection project's recipe is a ``DetectionConfig``."""
    recipe = config.round_config(round_, member)
    assert isinstance(recipe, DetectionConfig), "a detection project trains with a DetectionConfig"
    return recipe


def box_samples(records: list[ImageRecord], class_names: list[str], truth: bool) -> list[BoxSample]:
    """One ``BoxSample`` per record, with the boxes of its ground truth (``truth``) or of its label."""
    samples = []
    for record in records:
        path = record.truth_path if truth else record.label_path
        assert path is not None, f"{record.name} has no {'ground truth' if truth else 'label'}"
        boxes, mask = read_label_boxes(path, class_names)
        samples.append(BoxSample(record.path, boxes, mask))
    return samples


class DetectionRounds:
    """Rounds of a detection project (see ``crackal.active.tasks``)."""

    label_folder = "boxes"

    def embeddings(self, checkpoint: str | Path, records: list[ImageRecord]) -> np.ndarray:
        """Not offered: ``ALConfig`` refuses diverse selection for detection projects."""
        raise CrackalError("diverse selection needs a segmentation project")

    def train_and_evaluate(self, store: ProjectStore, config: ALConfig, round_: int, run_dir: Path,
                           progress: Progress) -> tuple[Path, dict, dict]:
        """Train the round's detector(s) (resuming a killed run) and score the held-out set."""
        train_set = DetectionDataset(box_samples(store.labelled(), config.class_names, truth=False))
        result = train_detector(train_set, None, detection_recipe(config, round_), run_dir, resume=True, progress=progress.brief())
        if config.method == "ensemble":
            for member in range(1, config.ensemble_size):
                train_detector(train_set, None, detection_recipe(config, round_, member), run_dir / f"member{member}",
                               resume=True, progress=progress.brief())
        model, _ = load_detector(result.best_checkpoint)
        heldout = DetectionDataset(box_samples(store.heldout(), config.class_names, truth=True))
        scores = evaluate_detector(model, heldout, config.class_names, progress=progress)
        keep = ("map_50", "map", "score_threshold", "box_precision", "segmentation_error", "data_reduction")
        return result.best_checkpoint, {"task": "detection", **{k: scores[k] for k in keep if k in scores}}, {}

    def score_pool(self, store: ProjectStore, config: ALConfig, round_: int, run_dir: Path, checkpoint: Path,
                   pool: list[ImageRecord], progress: Progress, ray: str | None = None,
                   features: list[np.ndarray] | None = None, batch_size: int = 4) -> np.ndarray:
        """One disagreement score per pool image (random scores for the random baseline);
        ``features`` is not filled (cost-aware selection is for segmentation projects)."""
        if ray is not None:
            raise CrackalError("--ray scores segmentation pools; score a detection project without --ray")
        seed = config.round_config(round_).seed
        if config.strategy == "random":
            return np.random.default_rng(seed).random(len(pool))
        model = load_detector(checkpoint)[0]
        members = [model] + [load_detector(run_dir / f"member{m}")[0] for m in range(1, config.ensemble_size)] \
            if config.method == "ensemble" else None
        scores = []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            starts = progress.bar(range(0, len(pool), batch_size), desc=f"scoring pool ({len(pool)} images)", unit="batches")
            for start in starts:
                images = [image_tensor(read_image(r.path)) for r in pool[start:start + batch_size]]
                samples = sample_ensemble(members, images) if members else sample_head_dropout(model, images, config.iterations)
                scores += [detection_uncertainty(s, len(config.class_names)) for s in samples]
        return np.array(scores, np.float64)

    def predictor(self, checkpoint: str | Path) -> Callable[[np.ndarray], ImageBoxes]:
        """The detector loaded once, as a function: image -> boxes above the validation threshold."""
        detector, state = load_detector(checkpoint)
        threshold = state.get("threshold", 0.5)
        return lambda image: detect_image(detector, image).above(threshold)

    def prelabels(self, checkpoint: str | Path, images: dict[str, np.ndarray]) -> dict[str, ImageBoxes]:
        """The detector's boxes above its validation threshold."""
        predict = self.predictor(checkpoint)
        return {name: predict(image) for name, image in images.items()}

    def write_prelabel(self, folder: Path, record: ImageRecord, prelabel, class_names: list[str],
                       size: tuple[int, int]) -> Path:
        """``folder/<name>.xml``: the pre-annotation as Pascal VOC, or no box."""
        path = folder / f"{record.name}.xml"
        write_voc(path, prelabel if prelabel is not None else ImageBoxes(), class_names, record.path.name, size)
        return path
