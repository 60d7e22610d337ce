"""The training loop: AdamW, warm-up + cosine schedule, validation every epoch, the best
checkpoint by validation F1, exact resume, channels_last on CPU, bf16 autocast on GPU."""

from __future__ import annotations

import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, RandomSampler
from tqdm.auto import tqdm

from crackal.data.dataset import SegmentationDataset
from crackal.data.sampling import SAMPLING_FOR_BALANCE, CropDataset, CropSampler
from crackal.errors import CrackalError
from crackal.losses import SegmentationLoss, class_weights
from crackal.models import create_model
from crackal.training.balance import PRFBalancer, monitor_dataset, monitor_precision_recall
from crackal.training.checkpoint import atomic_save, atomic_write_json, read_checkpoint
from crackal.training.config import TrainConfig
from crackal.training.evaluation import evaluate_model, headline


VAL_PROTOCOL = (
    "val_f1/val_precision/val_recall: strict pixel matching on the validation split, pixel counts pooled "
    "over its images, at the threshold (val_threshold, ODS) that maximises F1 there; mean over defect classes"
)


@dataclass
class TrainResult:
    """What a finished run left: its folder, best epoch and validation scores."""

    run_dir: Path
    best_checkpoint: Path
    best_epoch: int
    best_val_f1: float | None
    threshold: float
    history: list[dict]
    seconds: float


def resolve_device(name: str) -> torch.device:
    """``auto`` picks the GPU when there is one (TF32 matrix products allowed there)."""
    torch.backends.cuda.matmul.allow_tf32 = True
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise CrackalError(f"--device {name} asked for, but PyTorch sees no GPU; use --device cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def start_run(run_dir: Path, config) -> tuple[Path, Path, torch.device]:
    """Make ``run_dir/checkpoints``, pick the device and threads, seed everything; returns the
    paths of the last and best checkpoints and the device."""
    ckpt_dir = run_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    if config.threads:
        torch.set_num_threads(config.threads)
    seed_everything(config.seed)
    return ckpt_dir / "last.pt", ckpt_dir / "best.pt", device


def warmup_cosine(warmup_steps: int, total_steps: int, floor: float = 0.01):
    """LR multiplier: linear warm-up, then cosine decay to ``floor``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def validate(model, dataset: SegmentationDataset, loss_fn, config: TrainConfig) -> dict:
    """Validation loss and strict ODS precision/recall/F1 (threshold chosen on this set)."""
    result, loss = evaluate_model(model, dataset, config.class_names, (0,), config.tile_size, loss_fn=loss_fn)
    return {"val_loss": loss, **{f"val_{k}": v for k, v in headline(result).items()}}


def train(
    train_set: SegmentationDataset,
    val_set: SegmentationDataset | None,
    config: TrainConfig,
    run_dir: str | Path,
    resume: bool = False,
    progress: bool = True,
    weights: str | Path | None = None,
    encoder_weights: str | Path | None = None,
) -> TrainResult:
    """Train a segmentation model; everything goes to ``run_dir`` (see README: run folder).

    Random crops (chosen by ``config.balance``) and augmentation are added here.
    With ``resume`` the run continues from ``run_dir/checkpoints/last.pt`` and ends exactly as
    an uninterrupted run would.
    """
    run_dir = Path(run_dir)
    last_path, best_path, device = start_run(run_dir, config)
    model = create_model(**config.model_kwargs(), weights=weights, encoder_weights=encoder_weights).to(device)
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    counts = train_set.class_pixel_counts()
    weights_c = class_weights(counts, config.class_weighting)
    loss_fn = SegmentationLoss(config.loss, weights_c).to(device)

    samples = config.samples_per_epoch or len(train_set)
    steps_per_epoch = max(1, samples // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    crops = CropDataset(train_set, CropSampler(
        config.crop_size, SAMPLING_FOR_BALANCE[config.balance], config.positive_share, config.background_keep))
    balancer, monitor = None, None
    if config.balance == "prf":
        balancer = PRFBalancer(positive_share=config.positive_share)
        monitor = monitor_dataset(train_set, val_set, config.monitor_train)
    balance_interval = config.balance_interval or steps_per_epoch
    ema = None
    if config.ema_decay:  # validated and saved as "the model": an exponential moving average of the weights
        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(warmup, total_steps))

    history: list[dict] = []
    start_epoch, best_f1, best_epoch, threshold = 0, -1.0, 0, 0.5
    elapsed_before = 0.0
    if resume and last_path.is_file():
        state = read_checkpoint(last_path)
        model.load_state_dict(state["model"])
        if ema is not None:
            ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, start_epoch = state["history"], state["epoch"]
        best_f1, best_epoch, threshold = state["best_val_f1"], state["best_epoch"], state["threshold"]
        elapsed_before = state.get("seconds", 0.0)
        if balancer is not None:
            balancer.load_state_dict(state["balance"])
    config.save(run_dir / "config.json")

    if balancer is not None:
        balancer.apply(loss_fn, crops.sampler, weights_c)
    started = time.perf_counter() - elapsed_before
    has_val = val_set is not None and len(val_set) > 0
    for epoch in range(start_epoch, config.epochs):
        epoch_seed = config.seed * 100_003 + epoch
        crops.set_seed(epoch_seed)
        torch.manual_seed(epoch_seed)  # dropout: every epoch starts from a known state, so resume is exact
        generator = torch.Generator().manual_seed(epoch_seed)
        sampler = RandomSampler(crops, num_samples=samples, generator=generator)
        loader = DataLoader(crops, batch_size=config.batch_size, sampler=sampler, drop_last=True)
        model.train()
        running = []
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", disable=not (progress and sys.stderr.isatty()), leave=False)
        for step, batch in enumerate(bar, start=epoch * steps_per_epoch + 1):
            images, masks = batch["image"].to(device), batch["mask"].to(device)
            if device.type == "cpu":
                images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = loss_fn(model(images), masks)
                if config.tile_filter:
                    loss = loss + model.filter_loss(images, masks)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            if ema is not None:
                ema.update_parameters(model)
            running.append(loss.item())
            if balancer is not None and step % balance_interval == 0:
                balancer.update(*monitor_precision_recall(model, monitor, config.tile_size), step=step)
                balancer.apply(loss_fn, crops.sampler, weights_c)
                model.train()
            bar.set_postfix(loss=f"{np.mean(running[-20:]):.4f}")
        record = {"epoch": epoch + 1, "train_loss": float(np.mean(running)), "lr": scheduler.get_last_lr()[0]}
        if balancer is not None and balancer.log:
            record.update({k: balancer.log[-1][k] for k in ("prf", "positive_share", "weight_scale")})
        last_epoch = epoch + 1 == config.epochs or (config.time_limit_min and time.perf_counter() - started > 60 * config.time_limit_min)
        if has_val and ((epoch + 1) % config.val_interval == 0 or last_epoch):
            record.update(validate(ema.module if ema else model, val_set, loss_fn, config))
        record["seconds"] = round(time.perf_counter() - started, 2)
        history.append(record)
        improved = record["val_f1"] > best_f1 if "val_f1" in record else not has_val  # without validation: the last epoch
        checkpoint = {
            "model": (ema.module if ema else model).state_dict(),
            "config": config.to_dict(),
            "epoch": epoch + 1,
            "class_weights": weights_c.tolist(),
            "class_pixel_counts": counts.tolist(),
        }
        if improved:
            best_f1, best_epoch = record.get("val_f1"), epoch + 1
            threshold = record.get("val_threshold", 0.5)
            atomic_save({**checkpoint, "threshold": threshold, "val": record}, best_path)
        atomic_save(
            {
                **checkpoint,
                "model": model.state_dict(),
                "ema": ema.state_dict() if ema else None,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "history": history,
                "best_val_f1": best_f1,
                "best_epoch": best_epoch,
                "threshold": threshold,
                "seconds": record["seconds"],
                "balance": balancer.state_dict() if balancer else None,
            },
            last_path,
        )
        atomic_write_json(
            {"protocol": VAL_PROTOCOL, "history": history, "best_epoch": best_epoch, "best_val_f1": best_f1,
             "threshold": threshold, **({"balance": balancer.log} if balancer else {})},
            run_dir / "metrics.json",
        )
        if progress:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in record.items() if k.startswith("val_") or k == "train_loss")
            tqdm.write(f"epoch {epoch + 1}/{config.epochs}: {shown} ({record['seconds']:.0f}s)")
        if config.time_limit_min and record["seconds"] > 60 * config.time_limit_min:
            if progress:
                tqdm.write(f"time limit of {config.time_limit_min} min reached after epoch {epoch + 1}")
            break
    from crackal.training.plots import plot_balance, plot_history

    plot_history(history, run_dir / "training_curves.png")
    if balancer is not None:
        plot_balance(balancer.log, run_dir / "balance.png")
    return TrainResult(run_dir, best_path, best_epoch, best_f1, threshold, history, history[-1]["seconds"] if history else 0.0)
