"""Training a segmentation model: AdamW, warm-up + cosine schedule, random crops chosen by the
balance option, optional EMA weights and precision-recall flow, channels_last on the CPU and
bf16 autocast on a GPU. The epoch loop itself (resume, validation, checkpoints) is ``fit``."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, RandomSampler

from crackal.data.dataset import SegmentationDataset
from crackal.data.sampling import SAMPLING_FOR_BALANCE, CropDataset, CropSampler
from crackal.data.transforms import MEAN, STD, shrink_masks
from crackal.errors import CrackalError
from crackal.losses import SegmentationLoss, Weighting, class_weights
from crackal.models import create_model
from crackal.models.segmenter import Segmenter
from crackal.models.tile_filter import TileFilterSegmenter
from crackal.options import norm_pair
from crackal.progress import Progress
from crackal.runs.config import TrainConfig
from crackal.training import distributed
from crackal.training.balance import PRFBalancer, monitor_dataset, monitor_precision_recall
from crackal.training.evaluation import evaluate_model, headline
from crackal.training.fit import TrainResult, WarmupCosine, fit, start_run
from crackal.training.plots import plot_balance

VAL_PROTOCOL = (
    "val_f1/val_precision/val_recall: strict pixel matching on the validation split, pixel counts pooled "
    "over its images, at the threshold (val_threshold, ODS) that maximises F1 there; mean over defect classes"
)


class SegmentationRunner:
    """The model, loss, optimiser and crops of one segmentation run (see ``EpochRunner``)."""

    score_name = "val_f1"
    protocol = VAL_PROTOCOL

    def __init__(self, train_set: SegmentationDataset, val_set: SegmentationDataset | None, config: TrainConfig,
                 device: torch.device, weights=None) -> None:
        self.config, self.device, self.val_set = config, device, val_set
        self.has_validation = val_set is not None and len(val_set) > 0
        encoder_weights = config.encoder_weights if weights is None else None  # whole weights replace the encoder's
        model = create_model(**config.model_kwargs(), weights=weights, encoder_weights=encoder_weights).to(device)
        self.model = model.to(memory_format=torch.channels_last) if device.type == "cpu" else model
        self.own_scale = model.downscale if isinstance(model, Segmenter) else 1
        self.pixel_counts = train_set.class_pixel_counts()
        self.class_weights = class_weights(self.pixel_counts, cast(Weighting, config.class_weighting))  # checked by TrainConfig
        self.loss_fn = SegmentationLoss(config.loss, self.class_weights).to(device)
        self.samples = config.samples_per_epoch or len(train_set)
        self.batch_size = min(config.batch_size, self.samples)  # a tiny dataset still makes a step per epoch
        self.steps_per_epoch = max(1, self.samples // self.batch_size)
        self.ranks = distributed.world_size()
        if self.ranks > 1 and config.tile_filter:
            raise CrackalError("--tile-filter trains a second head outside the network's forward pass; train it in one process")
        if self.batch_size < self.ranks:
            raise CrackalError(f"--batch-size {self.batch_size} is the global batch and must be at least the number of "
                               f"processes ({self.ranks})")
        self.network = distributed.wrap(self.model, device)  # DistributedDataParallel under torchrun
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        warmup = int(round(config.warmup_epochs * self.steps_per_epoch))
        self.schedule = WarmupCosine(warmup, self.steps_per_epoch * config.epochs)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.schedule)
        self.crops = CropDataset(train_set, CropSampler(
            config.crop_size, SAMPLING_FOR_BALANCE[config.balance], config.positive_share, config.background_keep),
            config.class_aware, config.context)
        self.balancer = PRFBalancer(positive_share=config.positive_share) if config.balance == "prf" else None
        self.monitor = monitor_dataset(train_set, val_set, config.monitor_train) if self.balancer else None
        self.balance_interval = config.balance_interval or self.steps_per_epoch
        # with ema_decay, an exponential moving average of the weights is validated and saved as "the model"
        self.ema = (AveragedModel(self.model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)
                    if config.ema_decay else None)
        if self.balancer is not None:
            self.balancer.apply(self.loss_fn, self.crops.sampler, self.class_weights)

    def best_model(self) -> torch.nn.Module:
        """The model validated and saved as the best: the EMA of the weights when enabled."""
        return self.ema.module if self.ema is not None else self.model

    def train_epoch(self, epoch: int, seed: int, progress: Progress) -> dict:
        """One epoch of crops (the flow updates under ``prf``); its ``train_loss``, ``lr``, flow state and
        ``crops_<class>``: the share of the epoch's crops holding each defect class."""
        self.crops.set_seed(seed * self.ranks + distributed.rank())  # one process: the epoch's seed
        self.crops.reset_counts()
        sampler = RandomSampler(self.crops, num_samples=self.samples, generator=torch.Generator().manual_seed(seed))
        indices = distributed.shard(list(sampler)) if self.ranks > 1 else sampler
        loader = DataLoader(self.crops, batch_size=self.batch_size // self.ranks, sampler=indices, drop_last=True)
        self.model.train()
        losses = []
        desc = f"epoch {epoch + 1}/{self.config.epochs}"
        for step, batch in enumerate(progress.bar(loader, desc=desc, unit="batches", detail=True), start=epoch * self.steps_per_epoch + 1):
            losses.append(self._step(batch["image"].to(self.device), batch["mask"].to(self.device)))
            if self.balancer is not None and step % self.balance_interval == 0:
                self.balancer.update(*monitor_precision_recall(self.model, self.monitor, self.config.tile_size), step=step)
                self.balancer.apply(self.loss_fn, self.crops.sampler, self.class_weights)
                self.model.train()
        distributed.sync_buffers(self.model)
        record = {"train_loss": float(np.mean(losses)), "lr": self.scheduler.get_last_lr()[0]}
        shares = self.crops.crop_shares()  # this process's crops
        record.update({f"crops_{name}": round(float(share), 4) for name, share in zip(self.config.class_names[1:], shares[1:])})
        if self.balancer is not None and self.balancer.log:
            record.update({k: self.balancer.log[-1][k] for k in ("prf", "positive_share", "weight_scale")})
        return record

    def _step(self, images: torch.Tensor, masks: torch.Tensor) -> float:
        if self.device.type == "cpu":
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            if self.own_scale > 1:  # the loss at the network's scale: the masks shrink, not the logits grow
                loss = self.loss_fn(self.network(images, own_scale=True),
                                    shrink_masks(masks, self.own_scale, self.config.num_classes))
            else:
                loss = self.loss_fn(self.network(images), masks)
            if self.config.tile_filter:
                loss = loss + cast(TileFilterSegmenter, self.model).filter_loss(images, masks)  # built with tile_filter
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update_parameters(self.model)
        return loss.item()

    def validate(self) -> dict:
        """Validation loss and strict ODS precision/recall/F1 (threshold chosen on this set)."""
        assert self.val_set is not None  # fit validates only a runner with validation
        result, loss = evaluate_model(self.best_model(), self.val_set, self.config.class_names, (0,), self.config.tile_size,
                                      loss_fn=self.loss_fn)
        return {"val_loss": loss, **{f"val_{k}": v for k, v in headline(result).items()}}

    def checkpoint_extras(self) -> dict:
        """The class weights and class pixel counts of the training set, and the pixel normalisation
        the encoder reads (the model converts crackal's own to it; rebuilt from the config)."""
        mean, std = norm_pair(self.config.input_norm) or (MEAN, STD)
        return {"class_weights": self.class_weights.tolist(), "class_pixel_counts": self.pixel_counts.tolist(),
                "input_norm": {"mean": mean, "std": std}}

    def state_dict(self) -> dict:
        """Model, EMA, optimiser, scheduler and flow state, for resuming."""
        return {"model": self.model.state_dict(), "ema": self.ema.state_dict() if self.ema else None,
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "balance": self.balancer.state_dict() if self.balancer else None}

    def load_state_dict(self, state: dict) -> None:
        """Restore the state from a last checkpoint."""
        self.model.load_state_dict(state["model"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.balancer is not None:
            self.balancer.load_state_dict(state["balance"])
            self.balancer.apply(self.loss_fn, self.crops.sampler, self.class_weights)

    def metrics_extras(self) -> dict:
        """The flow's log, when balancing with ``prf``."""
        return {"balance": self.balancer.log} if self.balancer else {}

    def anneal_over(self, epochs: int) -> None:
        """End the learning-rate schedule after ``epochs`` epochs."""
        self.schedule.total_steps = self.steps_per_epoch * epochs

    def finish(self, run_dir: Path) -> None:
        """Plot the flow to ``balance.png``, when balancing with ``prf``."""
        if self.balancer is not None:
            plot_balance(self.balancer.log, run_dir / "balance.png")


def train(
    train_set: SegmentationDataset,
    val_set: SegmentationDataset | None,
    config: TrainConfig,
    run_dir: str | Path,
    resume: bool = False,
    progress: bool | Progress = True,
    weights: str | Path | None = None,
) -> TrainResult:
    """Train a segmentation model; everything goes to ``run_dir`` (see docs/training.md: run folder).

    With ``resume`` the run continues from ``run_dir/checkpoints/last.pt`` and ends exactly as
    an uninterrupted run would.
    """
    run_dir = Path(run_dir)
    device = start_run(run_dir, config)
    runner = SegmentationRunner(train_set, val_set, config, device, weights)
    result = fit(runner, config, run_dir, resume, Progress.of(progress) if distributed.is_main() else Progress(enabled=False))
    distributed.finish()
    return result
