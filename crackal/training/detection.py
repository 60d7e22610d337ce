"""Training and scoring a RetinaNet detector, in the same run folder layout as segmentation
(``config.json``, ``split.json``, ``data.json``, ``checkpoints/best.pt|last.pt``,
``metrics.json``, ``training_curves.png``) and with the same exact resume."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler

from crackal.data.detection import DetectionDataset, collate_detection
from crackal.errors import CrackalError
from crackal.metrics.detection import DetectionEvaluator
from crackal.models.detect import detect_images
from crackal.models.detector import create_detector
from crackal.progress import Progress
from crackal.runs.config import DetectionConfig
from crackal.training import distributed
from crackal.training.fit import TrainResult, WarmupCosine, fit, start_run

VAL_PROTOCOL = (
    "val_map_50: COCO mAP at IoU 0.5 on the validation split; score_threshold: the box score that maximises the "
    "harmonic mean of box precision and pixel recall (1 - segmentation error) there"
)


def evaluate_detector(model, dataset: DetectionDataset, class_names: list[str], score_threshold: float | None = None,
                      batch_size: int = 4, progress: bool | Progress = False) -> dict:
    """mAP, per-class AP and (where masks exist) the paper's pixel measures.

    Without ``score_threshold`` the threshold is chosen on these images (see ``DetectionEvaluator``).
    """
    evaluator = DetectionEvaluator(class_names)
    started = time.perf_counter()
    for start in Progress.of(progress).bar(range(0, len(dataset), batch_size), desc="detecting (batches)", unit="batches"):
        indices = range(start, min(start + batch_size, len(dataset)))
        items = [dataset[i] for i in indices]
        for i, _item, prediction in zip(indices, items, detect_images(model, [it["image"] for it in items])):
            evaluator.update(prediction, dataset.samples[i].boxes, dataset.load_mask(i, len(class_names)))
    seconds = (time.perf_counter() - started) / max(1, len(dataset))
    threshold = evaluator.best_threshold() if score_threshold is None else score_threshold
    return {**evaluator.compute(threshold), "seconds_per_image": round(seconds, 4)}


class DetectionRunner:
    """The RetinaNet, optimiser and images of one detector run (see ``EpochRunner``)."""

    score_name = "val_map_50"
    protocol = VAL_PROTOCOL

    def __init__(self, train_set: DetectionDataset, val_set: DetectionDataset | None, config: DetectionConfig,
                 device: torch.device, weights=None) -> None:
        self.config, self.device, self.train_set, self.val_set = config, device, train_set, val_set
        self.has_validation = val_set is not None and len(val_set) > 0
        self.model = create_detector(**config.model_kwargs(), weights=weights).to(device)
        self.steps_per_epoch = steps_per_epoch = max(1, len(train_set) // config.batch_size)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.schedule = WarmupCosine(int(round(config.warmup_epochs * steps_per_epoch)), steps_per_epoch * config.epochs)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.schedule)
        train_set.augment = True

    def best_model(self) -> nn.Module:
        """The model saved as the best checkpoint."""
        return self.model

    def train_epoch(self, epoch: int, seed: int, progress: Progress) -> dict:
        """One epoch over the training images; its ``train_loss`` and ``lr``."""
        self.train_set.set_seed(seed)
        sampler = RandomSampler(self.train_set, generator=torch.Generator().manual_seed(seed))
        loader = DataLoader(self.train_set, batch_size=self.config.batch_size, sampler=sampler,
                            drop_last=len(self.train_set) > self.config.batch_size, collate_fn=collate_detection)
        self.model.train()
        losses = []
        for batch in progress.bar(loader, desc=f"epoch {epoch + 1}/{self.config.epochs}", unit="batches", detail=True):
            images = [image.to(self.device) for image in batch["image"]]
            targets = [{k: v.to(self.device) for k, v in t.items()} for t in batch["target"]]
            loss = sum(self.model(images, targets).values())  # float32: bf16 box coordinates are 4-8 px coarse at 1000 px
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            losses.append(float(loss.detach()))
        return {"train_loss": float(np.mean(losses)), "lr": self.scheduler.get_last_lr()[0]}

    def validate(self) -> dict:
        """mAP at IoU 0.5 and 0.5:0.95 and the pixel measures on the validation images."""
        assert self.val_set is not None  # fit validates only a runner with validation
        scores = evaluate_detector(self.model, self.val_set, self.config.class_names)
        return {"val_map_50": scores["map_50"], "val_map": scores["map"], "val_threshold": scores["score_threshold"],
                **{f"val_{k}": scores[k] for k in ("box_precision", "segmentation_error", "data_reduction") if k in scores}}

    def checkpoint_extras(self) -> dict:
        """Marks the checkpoints as a detector's."""
        return {"task": "detection"}

    def state_dict(self) -> dict:
        """Model, optimiser and scheduler state, for resuming."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore model, optimiser and scheduler from a last checkpoint."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])

    def metrics_extras(self) -> dict:
        """No extra entries."""
        return {}

    def anneal_over(self, epochs: int) -> None:
        """End the learning-rate schedule after ``epochs`` epochs."""
        self.schedule.total_steps = self.steps_per_epoch * epochs

    def finish(self, run_dir: Path) -> None:
        """Nothing to add to the run folder."""
        pass


def train_detector(
    train_set: DetectionDataset,
    val_set: DetectionDataset | None,
    config: DetectionConfig,
    run_dir: str | Path,
    resume: bool = False,
    progress: bool | Progress = True,
    weights: str | Path | None = None,
) -> TrainResult:
    """Train a RetinaNet on whole images (random flips); keep the best by validation mAP@0.5."""
    if distributed.launched():
        raise CrackalError("detector training runs in one process; start 'crackal detect train' without torchrun")
    run_dir = Path(run_dir)
    device = start_run(run_dir, config)
    runner = DetectionRunner(train_set, val_set, config, device, weights)
    return fit(runner, config, run_dir, resume, Progress.of(progress))
