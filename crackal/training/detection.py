"""Training and scoring a RetinaNet detector, in the same run folder layout as segmentation
(``config.json``, ``split.json``, ``data.json``, ``checkpoints/best.pt|last.pt``,
``metrics.json``, ``training_curves.png``) and with the same exact resume."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, RandomSampler
from tqdm.auto import tqdm

from crackal.data.detection import DetectionDataset, collate_detection
from crackal.inference.detect import detect_images
from crackal.metrics.detection import DetectionEvaluator
from crackal.models.detector import BACKBONES, create_detector
from crackal.training.checkpoint import atomic_save, atomic_write_json, read_checkpoint
from crackal.training.config import SavedConfig, raise_first_failed
from crackal.training.trainer import TrainResult, start_run, warmup_cosine

VAL_PROTOCOL = (
    "val_map_50: COCO mAP at IoU 0.5 on the validation split; score_threshold: the box score that maximises the "
    "harmonic mean of box precision and pixel recall (1 - segmentation error) there"
)


@dataclass
class DetectionConfig(SavedConfig):
    """Model and optimisation options of one detector run (see ``create_detector``)."""

    backbone: str = "resnet18"
    class_names: list[str] = field(default_factory=lambda: ["background", "crack"])
    image_size: int = 0
    head_dropout: float = 0.1
    epochs: int = 30
    batch_size: int = 4
    lr: float = 5e-4
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    grad_clip: float = 10.0
    merge_distance: int = 8
    min_pixels: int = 20
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    time_limit_min: float | None = None

    def __post_init__(self) -> None:
        raise_first_failed([
            (self.backbone in BACKBONES, f"unknown --backbone {self.backbone!r}; choose one of {', '.join(BACKBONES)}"),
            (len(self.class_names) >= 2, "at least two classes (background first) are needed"),
            (self.image_size == 0 or self.image_size >= 64, f"--image-size is the short side in px (>= 64), or 0 to keep it; got {self.image_size}"),
            (self.epochs >= 1 and self.batch_size >= 1, "--epochs and --batch-size must be at least 1"),
            (self.lr > 0, f"--lr must be positive, got {self.lr}"),
            (self.device in ("auto", "cpu") or self.device.startswith("cuda"), f"--device must be auto, cpu or cuda[:N], got {self.device!r}"),
        ])

    def model_kwargs(self) -> dict:
        return {"backbone": self.backbone, "num_classes": len(self.class_names), "image_size": self.image_size,
                "head_dropout": self.head_dropout}


def evaluate_detector(model, dataset: DetectionDataset, class_names: list[str], score_threshold: float | None = None,
                      batch_size: int = 4, progress: bool = False) -> dict:
    """mAP, per-class AP and (where masks exist) the paper's pixel measures.

    Without ``score_threshold`` the threshold is chosen on these images (see ``DetectionEvaluator``).
    """
    evaluator = DetectionEvaluator(class_names)
    started = time.perf_counter()
    for start in tqdm(range(0, len(dataset), batch_size), desc="detecting", disable=not progress, leave=False):
        indices = range(start, min(start + batch_size, len(dataset)))
        items = [dataset[i] for i in indices]
        for i, item, prediction in zip(indices, items, detect_images(model, [it["image"] for it in items])):
            evaluator.update(prediction, dataset.samples[i].boxes, dataset.load_mask(i, len(class_names)))
    seconds = (time.perf_counter() - started) / max(1, len(dataset))
    threshold = evaluator.best_threshold() if score_threshold is None else score_threshold
    return {**evaluator.compute(threshold), "seconds_per_image": round(seconds, 4)}


def train_detector(
    train_set: DetectionDataset,
    val_set: DetectionDataset | None,
    config: DetectionConfig,
    run_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    weights: str | Path | None = None,
) -> TrainResult:
    """Train a RetinaNet on whole images (random flips); keep the best by validation mAP@0.5."""
    run_dir = Path(run_dir)
    last_path, best_path, device = start_run(run_dir, config)
    model = create_detector(**config.model_kwargs(), weights=weights).to(device)
    steps_per_epoch = max(1, len(train_set) // config.batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, warmup_cosine(int(round(config.warmup_epochs * steps_per_epoch)), steps_per_epoch * config.epochs))
    history, start_epoch, best, best_epoch, threshold, elapsed = [], 0, -1.0, 0, 0.5, 0.0
    if resume and last_path.is_file():
        state = read_checkpoint(last_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, start_epoch, best, best_epoch = state["history"], state["epoch"], state["best_val_map_50"], state["best_epoch"]
        threshold, elapsed = state["threshold"], state["seconds"]
    config.save(run_dir / "config.json")
    train_set.augment = True
    started = time.perf_counter() - elapsed
    for epoch in range(start_epoch, config.epochs):
        epoch_seed = config.seed * 100_003 + epoch
        train_set.set_seed(epoch_seed)
        torch.manual_seed(epoch_seed)
        sampler = RandomSampler(train_set, generator=torch.Generator().manual_seed(epoch_seed))
        loader = DataLoader(train_set, batch_size=config.batch_size, sampler=sampler, drop_last=len(train_set) > config.batch_size,
                            collate_fn=collate_detection)
        model.train()
        running = []
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", disable=not (progress and sys.stderr.isatty()), leave=False)
        for batch in bar:
            images = [image.to(device) for image in batch["image"]]
            targets = [{k: v.to(device) for k, v in t.items()} for t in batch["target"]]
            losses = model(images, targets)  # float32: bf16 box coordinates are 4-8 px coarse at 1000 px
            loss = sum(losses.values())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            scheduler.step()
            running.append(float(loss.detach()))
            bar.set_postfix(loss=f"{np.mean(running[-20:]):.4f}")
        record = {"epoch": epoch + 1, "train_loss": float(np.mean(running)), "lr": scheduler.get_last_lr()[0]}
        if val_set is not None and len(val_set):
            scores = evaluate_detector(model, val_set, config.class_names)
            record.update(val_map_50=scores["map_50"], val_map=scores["map"], val_threshold=scores["score_threshold"],
                          **{f"val_{k}": scores[k] for k in ("box_precision", "segmentation_error", "data_reduction") if k in scores})
        record["seconds"] = round(time.perf_counter() - started, 2)
        history.append(record)
        improved = "val_map_50" not in record or record["val_map_50"] > best
        checkpoint = {"model": model.state_dict(), "config": config.to_dict(), "epoch": epoch + 1, "task": "detection"}
        if improved:
            best, best_epoch, threshold = record.get("val_map_50", -1.0), epoch + 1, record.get("val_threshold", 0.5)
            atomic_save({**checkpoint, "threshold": threshold, "val": record}, best_path)
        atomic_save({**checkpoint, "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "history": history,
                     "best_val_map_50": best, "best_epoch": best_epoch, "threshold": threshold, "seconds": record["seconds"]},
                    last_path)
        atomic_write_json({"protocol": VAL_PROTOCOL, "history": history, "best_epoch": best_epoch, "best_val_map_50": best,
                           "threshold": threshold}, run_dir / "metrics.json")
        if progress:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in record.items() if k.startswith("val_") or k == "train_loss")
            tqdm.write(f"epoch {epoch + 1}/{config.epochs}: {shown} ({record['seconds']:.0f}s)")
        if config.time_limit_min and record["seconds"] > 60 * config.time_limit_min:
            break
    from crackal.training.plots import plot_history

    plot_history(history, run_dir / "training_curves.png")
    return TrainResult(run_dir, best_path, best_epoch, best if best >= 0 else None, threshold, history,
                       history[-1]["seconds"] if history else 0.0)


def load_detector(path: str | Path, device: str | torch.device = "cpu"):
    """Rebuild a trained detector from a checkpoint (or run folder); eval mode, and the checkpoint dict."""
    from crackal.errors import CrackalError

    state = read_checkpoint(path)
    if state.get("task") != "detection":
        raise CrackalError(f"{path} holds a segmentation model; pass a run folder made by 'crackal detect train'")
    config = DetectionConfig.from_dict(state["config"])
    model = create_detector(**config.model_kwargs())
    model.load_state_dict(state["model"])
    return model.to(device).eval(), state
