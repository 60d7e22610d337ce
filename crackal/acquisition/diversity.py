"""Batches that are uncertain and diverse: image embeddings from the encoder, and
cluster-then-uncertainty selection.

Survey frames a few metres apart look alike and score alike, so the top-k of an uncertainty
score often picks k near-copies of one scene. ``select_diverse`` takes the ``candidates x k``
most uncertain images, clusters their encoder embeddings into k groups (k-means) and keeps the
most uncertain image of each group: one pick per kind of scene (the "diverse mini-batch"
selection of Zhdanov 2019, the clustering step of Cluster-Margin, Citovsky et al. 2021).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import numpy as np
import torch
from torch import nn

from crackal.acquisition.select import select_top
from crackal.data.transforms import to_tensor
from crackal.models.segmenter import Segmenter
from crackal.models.unet import UNetTrunk, encode


def _deepest(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The deepest encoder features of a Segmenter (an smp encoder's last stage, the compact
    U-Net's bottleneck), or the trunk's output for other trunks."""
    if isinstance(model, Segmenter) and model.downscale == 1:
        x = model.input_norm(x)
        if isinstance(model.trunk, UNetTrunk) and type(model.trunk) is UNetTrunk:  # not the two-scale subclass (6 channels)
            return encode(model.trunk.down, x)[-1]
        encoder = getattr(model.trunk, "encoder", None)
        if isinstance(encoder, nn.Module):
            return encoder(x)[-1]
    return cast(Segmenter, model).features(x)


@torch.inference_mode()
def encoder_embeddings(model: nn.Module, images) -> np.ndarray:
    """``(N, 2D)``: the global mean and max of the deepest encoder features of each image
    (``images``: an iterable of ``(H, W, 3) uint8`` arrays), for diversity and coreset."""
    model.eval()
    rows = []
    for image in images:
        x, _ = cast(Segmenter, model).pad(to_tensor(image)[None])
        features = _deepest(model, x)
        rows.append(torch.cat([features.mean((2, 3)), features.amax((2, 3))], 1)[0].float().numpy())
    return np.stack(rows)


def select_diverse(scores: np.ndarray, embed: Callable[[np.ndarray], np.ndarray], k: int, candidates: int = 4,
                   seed: int = 0) -> np.ndarray:
    """``k`` indices: the most uncertain image of each of k k-means clusters of the embeddings
    of the ``candidates * k`` highest ``scores`` (``embed(indices)`` gives their ``(m, D)``
    embeddings), most uncertain first; clusters left empty are filled from the top scores.

    >>> scores = np.array([0.9, 0.89, 0.88, 0.5, 0.4])   # 0-2 are near-copies, 3 is another scene
    >>> points = np.array([[0.0, 0], [0.01, 0], [0, 0.01], [5, 5], [9, 0]])
    >>> select_diverse(scores, lambda idx: points[idx], 2, candidates=2).tolist()
    [0, 3]
    """
    from scipy.cluster.vq import kmeans2

    top = select_top(scores, candidates * k)
    k = min(k, len(top))
    if k == len(top):
        return top
    embeddings = np.asarray(embed(top), dtype=np.float64)
    embeddings = (embeddings - embeddings.mean(0)) / (embeddings.std(0) + 1e-8)
    _, labels = kmeans2(embeddings, k, minit="++", seed=seed)
    chosen = [int(top[labels == c][0]) for c in range(k) if np.any(labels == c)]  # top is sorted: first = most uncertain
    chosen += [int(i) for i in top if int(i) not in chosen][: k - len(chosen)]
    return np.array(sorted(chosen, key=lambda i: -scores[i]), dtype=np.int64)
