"""Stochastic forward passes: MC-Dropout (head-only fast path and full path), MC-BatchNorm,
and explicit ensembles. Each returns the running moments of its I samples (``SampleStats``).

The fast path exists because crackal models are ``trunk -> Dropout2d -> last conv``: the
deterministic trunk runs once per batch and only dropout + the last convolution are
sampled, where BaaL-style MC-Dropout re-runs the whole network I times.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from crackal.errors import CrackalError, choose
from crackal.models.outputs import class_probabilities
from crackal.models.segmenter import Segmenter
from crackal.options import METHODS, Method
from crackal.uncertainty.stats import SampleStats, StatsAccumulator

McPath = Literal["auto", "head", "full"]


def dropout_layers(module: nn.Module) -> list[nn.Module]:
    """The dropout layers of ``module`` that drop something (``p > 0``)."""
    return [m for m in module.modules() if isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0]


def head_only(model: nn.Module) -> bool:
    """True when the model's only active dropout is the one before its last convolution."""
    return isinstance(model, Segmenter) and model.dropout.p > 0 and not dropout_layers(model.trunk)


@contextmanager
def dropout_active(model: nn.Module) -> Iterator[None]:
    """Eval mode (BatchNorm uses running statistics) with every dropout layer sampling."""
    was_training = model.training
    model.eval()
    for layer in dropout_layers(model):
        layer.train()
    try:
        yield
    finally:
        model.train(was_training)


def _prepare(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    device = next(model.parameters()).device
    batch = batch.to(device)
    return batch.contiguous(memory_format=torch.channels_last) if device.type == "cpu" else batch


def _autocast(batch: torch.Tensor):
    return torch.autocast(batch.device.type, dtype=torch.bfloat16, enabled=batch.device.type == "cuda")


@torch.inference_mode()
def mc_dropout(model: nn.Module, batch: torch.Tensor, iterations: int = 20, path: McPath = "auto") -> SampleStats:
    """MC-Dropout moments for a normalised batch ``(N, 3, H, W)``.

    ``head``: trunk once, dropout + last conv ``iterations`` times (needs ``head_only(model)``);
    ``full``: the whole network ``iterations`` times; ``auto`` picks ``head`` when it applies.
    With the same RNG state both paths draw exactly the same samples.
    """
    if path == "auto":
        path = "head" if head_only(model) else "full"
    if path == "head" and not head_only(model):
        raise ValueError("the head-only path needs a crackal Segmenter whose only dropout is before the last conv")
    if not dropout_layers(model):
        raise ValueError("MC-Dropout needs a model with dropout (p > 0); use MC-BatchNorm or an ensemble")
    batch = _prepare(model, batch)
    acc = StatsAccumulator()
    with dropout_active(model), _autocast(batch):
        if path == "head":
            assert isinstance(model, Segmenter)  # head_only() checked it
            padded, (h, w) = model.pad(batch)
            features = model.features(padded)
            for chunk in _chunks(iterations, HEAD_CHUNK):
                acc.add_stack(head_samples(model, features, chunk, (h, w)))
        else:
            for _ in range(iterations):
                acc.add(class_probabilities(model(batch)))
    return acc.result()


HEAD_CHUNK = 10  # samples computed together on the head-only path (bounds memory per batch)


def _chunks(total: int, size: int) -> list[int]:
    return [min(size, total - start) for start in range(0, total, size)]


def head_samples(model: Segmenter, features: torch.Tensor, samples: int, size: tuple[int, int]) -> torch.Tensor:
    """``samples`` draws of ``softmax(head(features))`` at once: ``(N, samples, C, H, W)``.

    ``Dropout2d`` zeroes whole channels, and the last convolution is linear, so each draw is
    the convolution with channel-masked weights: all draws of an image are one convolution
    with ``samples x classes`` output channels. The masks are drawn exactly as ``Dropout2d``
    draws them (one ``(N, C, 1, 1)`` Bernoulli tensor per pass), so with the same RNG state
    the draws equal those of the full path.
    """
    conv, p = model.classifier, model.dropout.p
    n, channels = features.shape[:2]
    masks = torch.stack([torch.empty(n, channels, 1, 1, device=features.device).bernoulli_(1 - p) for _ in range(samples)], 1)
    keep = masks[..., 0, 0] / (1 - p)  # (N, S, C_in)
    out = []
    for i in range(n):
        weight = (keep[i][:, None, :, None, None] * conv.weight[None]).flatten(0, 1)  # (S * K, C_in, kh, kw)
        bias = conv.bias.repeat(samples) if conv.bias is not None else None
        logits = F.conv2d(features[i : i + 1], weight.to(features.dtype), bias, conv.stride, conv.padding, conv.dilation)
        logits = model.upsample(logits.view(samples, conv.out_channels, *logits.shape[-2:]))
        out.append(class_probabilities(logits[..., : size[0], : size[1]]))
    return torch.stack(out)


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer of ``model``."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def _running_stats(layer: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The running mean, variance and batch count buffers of a BatchNorm layer."""
    mean, var, count = layer.running_mean, layer.running_var, layer.num_batches_tracked
    if mean is None or var is None or count is None:
        raise ValueError("MC-BatchNorm needs BatchNorm layers that track running statistics")
    return mean, var, count


@contextmanager
def batch_statistics_from(model: nn.Module, reference: torch.Tensor) -> Iterator[None]:
    """Inside, every BatchNorm layer normalises with the statistics of ``reference`` (a
    mini-batch of labelled images) instead of its running averages; dropout stays off."""
    layers = batchnorm_layers(model)
    saved = [(tuple(t.clone() for t in _running_stats(m)), m.momentum) for m in layers]
    was_training = model.training
    try:
        model.eval()
        for m in layers:
            m.reset_running_stats()
            m.momentum = None  # cumulative average: after one batch, exactly that batch's statistics
            m.train()
        with _autocast(reference):
            model(reference)
        model.eval()
        yield
    finally:
        for m, (values, momentum) in zip(layers, saved):
            for buffer, value in zip(_running_stats(m), values):
                buffer.copy_(value)
            m.momentum = momentum
        model.train(was_training)


@torch.inference_mode()
def mc_batchnorm(
    model: nn.Module, batch: torch.Tensor, reference_batches: Callable[[], torch.Tensor], iterations: int = 5
) -> SampleStats:
    """MC-BatchNorm moments: pass ``i`` normalises with a fresh labelled mini-batch from
    ``reference_batches()`` (which must return a random batch each call)."""
    if not batchnorm_layers(model):
        raise ValueError("MC-BatchNorm needs a model with BatchNorm layers")
    batch = _prepare(model, batch)
    acc = StatsAccumulator()
    for _ in range(iterations):
        with batch_statistics_from(model, _prepare(model, reference_batches())), _autocast(batch):
            acc.add(class_probabilities(model(batch)))
    return acc.result()


@torch.inference_mode()
def ensemble(models: Sequence[nn.Module], batch: torch.Tensor) -> SampleStats:
    """Moments over the deterministic predictions of M models (trained from different seeds)."""
    acc = StatsAccumulator()
    for model in models:
        model.eval()
        x = _prepare(model, batch)
        with _autocast(x):
            acc.add(class_probabilities(model(x)))
    return acc.result()


def sample(method: Method, models: nn.Module | Sequence[nn.Module], batch: torch.Tensor, iterations: int = 20,
           reference_batches: Callable[[], torch.Tensor] | None = None) -> SampleStats:
    """The moments of one uncertainty ``method`` (``models`` is a list for ``ensemble``;
    ``mc_batchnorm`` needs ``reference_batches``)."""
    if method == "ensemble":
        return ensemble(models if isinstance(models, Sequence) else [models], batch)
    model = models[0] if isinstance(models, Sequence) else models
    if method == "mc_batchnorm":
        if reference_batches is None:
            raise CrackalError("MC-BatchNorm needs labelled images to draw its reference batches from")
        return mc_batchnorm(model, batch, reference_batches, iterations)
    choose(METHODS, method, "method")
    return mc_dropout(model, batch, iterations)
