"""The segmentation half of an active-learning round: train the U-Net (and the ensemble's
other members) on the labelled masks, score it on the held-out set, score the pool by a
pixel heuristic reduced per image, and pre-annotate the queue with its masks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import cast

import numpy as np
import torch

from crackal.acquisition.cost import crack_classes, mask_features
from crackal.acquisition.diversity import encoder_embeddings
from crackal.acquisition.score import score_pool
from crackal.active.config import ALConfig
from crackal.active.project import LazyImages
from crackal.active.store import ImageRecord, ProjectStore
from crackal.data.dataset import SegmentationDataset
from crackal.data.io import mask_png, write_png
from crackal.data.layout import Pair
from crackal.data.transforms import to_tensor, train_transform
from crackal.errors import CrackalError
from crackal.inference.render import class_mask_from_probs
from crackal.losses import SegmentationLoss
from crackal.models.predict import predict_image
from crackal.options import Method, Reduction
from crackal.progress import Progress
from crackal.runs.checkpoint import load_model
from crackal.training.evaluation import evaluate_model, headline
from crackal.training.trainer import train


def _dataset(records: list[ImageRecord], num_classes: int, truth: bool) -> SegmentationDataset:
    pairs = []
    for record in records:
        mask = record.truth_path if truth else record.label_path
        assert mask is not None, f"{record.name} has no {'ground truth' if truth else 'label'}"
        pairs.append(Pair(record.path, mask))
    return SegmentationDataset(pairs, num_classes)


def _reference_batches(labelled: SegmentationDataset, crop: int, seed: int, size: int = 4):
    """Random augmented crops of labelled images, for MC-BatchNorm."""
    rng = np.random.default_rng(seed)
    transform = train_transform(crop)
    transform.set_random_seed(seed)

    def draw() -> torch.Tensor:
        picks = rng.integers(len(labelled), size=size)
        return torch.stack([to_tensor(transform(image=labelled.load(int(i))[0])["image"]) for i in picks])

    return draw


def validation_slice(records: list[ImageRecord], config: ALConfig, round_: int) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """The labelled images split into (training, validation): a seeded sample of
    ``config.validation_count`` images that hold a defect (a slice of defect-free images would
    score every epoch alike and keep the first), taken only while at least as many defect
    images are left to train on; else none (see ``ALConfig``). Never the held-out set."""
    count = config.validation_count(len(records))
    with_defect = [i for i, r in enumerate(records) if r.defect_share is None or r.defect_share > 0]
    if len(with_defect) < 2 * count:
        return records, []
    rng = np.random.default_rng(config.round_config(round_).seed)
    picked = set(rng.choice(with_defect, count, replace=False).tolist())
    return [r for i, r in enumerate(records) if i not in picked], [r for i, r in enumerate(records) if i in picked]


def previous_weights(store: ProjectStore, config: ALConfig, round_: int, member: int = 0) -> Path | None:
    """With ``warm_start``: the previous round's best checkpoint (of ensemble member ``member``), else None."""
    before = [r for r in store.rounds() if r["round"] == round_ - 1 and r["checkpoint"]]
    if not config.warm_start or not before:
        return None
    best = before[0]["checkpoint"]
    return best if member == 0 else best.parents[1] / f"member{member}" / "checkpoints" / "best.pt"


class SegmentationRounds:
    """Rounds of a segmentation project (see ``crackal.active.tasks``)."""

    label_folder = "masks"

    def train_and_evaluate(self, store: ProjectStore, config: ALConfig, round_: int, run_dir: Path,
                           progress: Progress) -> tuple[Path, dict, dict]:
        """Train the round's model(s) (resuming a killed run; from the previous round's weights
        with ``warm_start``; on the labelled images less a validation slice under
        ``round_steps="auto"``) and score the held-out set."""
        labelled = store.labelled()
        training, validation = validation_slice(labelled, config, round_)
        train_set = _dataset(training, len(config.class_names), truth=False)
        val_set = _dataset(validation, len(config.class_names), truth=False) if validation else None
        result = None
        for member in range(config.ensemble_size if config.method == "ensemble" else 1):
            member_result = train(train_set, val_set, config.segmentation_config(round_, member, len(labelled), len(training)),
                                  run_dir / f"member{member}" if member else run_dir, resume=True,
                                  progress=progress.brief(), weights=previous_weights(store, config, round_, member))
            result = result or member_result
        assert result is not None
        tcfg = config.segmentation_config(round_)
        model, ckpt = load_model(result.best_checkpoint)
        heldout = _dataset(store.heldout(), len(config.class_names), truth=True)
        loss_fn = SegmentationLoss(tcfg.loss, torch.tensor(ckpt["class_weights"]))
        scores, loss = evaluate_model(model, heldout, config.class_names, (0, 2), tcfg.tile_size, loss_fn=loss_fn,
                                      progress=progress)
        metrics = {"strict": headline(scores, 0), "tol2": headline(scores, 2), "loss": loss,
                   "auc": float(np.mean([c["auc"] for c in scores["classes"].values()])),
                   "training": {"epochs": len(result.history), "best_epoch": result.best_epoch,
                                "validation_images": len(validation), "warm_start": previous_weights(store, config, round_) is not None}}
        if len(config.class_names) > 2:  # multi-class: the arg-max view (mIoU over defects, IoU and area error per class)
            argmax = scores["argmax"]
            metrics["argmax"] = {"miou_defects": argmax["miou_defects"],
                                 "classes": {n: {k: argmax["classes"][n][k] for k in ("iou", "area_error")}
                                             for n in config.class_names[1:]},
                                 "matrix": argmax["matrix"]}
        return result.best_checkpoint, metrics, {"class_weights": ckpt["class_weights"]}

    def score_pool(self, store: ProjectStore, config: ALConfig, round_: int, run_dir: Path, checkpoint: Path,
                   pool: list[ImageRecord], progress: Progress, ray: str | None = None,
                   features: list[np.ndarray] | None = None) -> np.ndarray:
        """One acquisition score per pool image, from the round's model(s); on Ray at ``ray`` when given.
        ``features`` (a list, for cost-aware selection) receives the ``crackal.acquisition.cost``
        features of each pool image's predicted mask: the mean MC probabilities the scores come
        from, at the model's validation threshold (no extra forward pass)."""
        tcfg = config.segmentation_config(round_)
        strategy = config.strategy
        assert strategy is not None  # __post_init__ chose the task's default
        if features is not None and ray is not None:
            raise CrackalError("cost-aware selection reads the predicted masks while scoring in this process; "
                               "leave out --ray (ray=None) or set cost_aware=false")
        if ray is not None:
            from crackal.scale.jobs import score_pool_ray

            checkpoints = [checkpoint] + [run_dir / f"member{m}" for m in range(1, config.ensemble_size)] \
                if config.method == "ensemble" else [checkpoint]
            return score_pool_ray(checkpoints, [r.path for r in pool], strategy, config.reduction, config.method,
                                  config.iterations, seed=tcfg.seed, address=ray, progress=progress)
        model, state = load_model(checkpoint)
        models = [model] + [load_model(run_dir / f"member{m}")[0] for m in range(1, config.ensemble_size)] \
            if config.method == "ensemble" else model
        references = None
        if config.method == "mc_batchnorm":
            labelled = _dataset(store.labelled(), len(config.class_names), truth=False)
            references = _reference_batches(labelled, tcfg.crop_size, tcfg.seed)
        on_mean = None
        if features is not None:
            cracks, threshold = crack_classes(config.class_names), state.get("threshold", 0.5)

            def on_mean(mean: torch.Tensor) -> None:
                features.extend(mask_features(class_mask_from_probs(probs, threshold), cracks) for probs in mean.cpu().numpy())

        reduction, method = cast(Reduction, config.reduction), cast(Method, config.method)  # checked by ALConfig
        return score_pool(models, LazyImages(pool), strategy, reduction, method, config.iterations,
                          reference_batches=references, seed=tcfg.seed, progress=progress, on_mean=on_mean)

    def embeddings(self, checkpoint: str | Path, records: list[ImageRecord]) -> np.ndarray:
        """The round model's encoder embedding of each image (``selection="diverse"``)."""
        return encoder_embeddings(load_model(checkpoint)[0], LazyImages(records))

    def predictor(self, checkpoint: str | Path) -> Callable[[np.ndarray], np.ndarray]:
        """The model loaded once, as a function: image -> class mask at the validation threshold."""
        model, state = load_model(checkpoint)
        threshold = state.get("threshold", 0.5)
        return lambda image: class_mask_from_probs(predict_image(model, image), threshold)

    def prelabels(self, checkpoint: str | Path, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The model's class mask of each image, at its validation threshold."""
        predict = self.predictor(checkpoint)
        return {name: predict(image) for name, image in images.items()}

    def write_prelabel(self, folder: Path, record: ImageRecord, prelabel, class_names: list[str],
                       size: tuple[int, int]) -> Path:
        """``folder/<name>.png``: the pre-annotation, or an empty mask."""
        path = folder / f"{record.name}.png"
        mask = prelabel if prelabel is not None else np.zeros(size, np.uint8)
        write_png(path, mask_png(mask, len(class_names)))
        return path
