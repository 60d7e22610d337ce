"""A project's labelling-cost model for cost-aware selection: the features of each timed
label (read from its stored label file) against its measured (or simulated) active seconds,
fitted by ``crackal.acquisition.cost.fit_cost_model``; the config's ``seconds_per_image``
until ``crackal.active.effort.MIN_MEASURED`` labels are timed."""

from __future__ import annotations

import numpy as np

from crackal.acquisition.cost import CostModel, crack_classes, fit_cost_model, mask_features
from crackal.active import effort as timing
from crackal.active.config import ALConfig
from crackal.active.store import ProjectStore
from crackal.data.io import read_raw_mask, to_class_mask


def timed_labels(store: ProjectStore, class_names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 3)`` features of every timed mask label (the very label file that was timed) and
    ``(n,)`` its active seconds."""
    cracks = crack_classes(class_names)
    rows, seconds = [], []
    paths: dict[int, dict] = {}
    for effort in store.label_efforts():
        if effort["image_id"] not in paths:
            paths[effort["image_id"]] = {h["id"]: h["path"] for h in store.label_history(effort["image_id"])}
        path = paths[effort["image_id"]].get(effort["label_id"])
        if path is None or path.suffix.lower() == ".xml":
            continue
        mask = to_class_mask(read_raw_mask(path), len(class_names), path)
        rows.append(mask_features(mask, cracks))
        seconds.append(effort["active_seconds"])
    return (np.stack(rows) if rows else np.zeros((0, 3))), np.array(seconds, dtype=np.float64)


def project_cost_model(store: ProjectStore, config: ALConfig) -> CostModel:
    """The project's cost model now: fitted on its timed labels, or the config's estimate."""
    features, seconds = timed_labels(store, config.class_names)
    return fit_cost_model(features, seconds, config.seconds_per_image, minimum=timing.MIN_MEASURED)
