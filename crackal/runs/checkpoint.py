"""Checkpoints: saved atomically (a kill mid-write never leaves a broken file) and read back into
a segmentation model or a detector."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from crackal.errors import CrackalError
from crackal.models import create_model
from crackal.models.detector import create_detector
from crackal.runs.config import DetectionConfig, TrainConfig


def atomic_save(obj, path: str | Path) -> None:
    """``torch.save`` to a temporary file, then rename over ``path``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def atomic_write_json(data, path: str | Path) -> None:
    """Write ``data`` as JSON to a temporary file, then rename it over ``path``."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def save_scores(result: dict, path: str | Path) -> dict:
    """Write an evaluation result as JSON (atomically); returns it with ``saved_to`` added."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(result, path)
    return {**result, "saved_to": str(path)}


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint file, or a run folder's best checkpoint."""
    path = Path(path)
    if path.is_dir():
        for candidate in (path / "checkpoints" / "best.pt", path / "best.pt", path / "checkpoints" / "last.pt"):
            if candidate.is_file():
                return candidate
        raise CrackalError(f"no checkpoint in {path}; pass a run folder made by 'crackal train' or a .pt file")
    if not path.is_file():
        raise CrackalError(f"checkpoint not found: {path}")
    return path


def read_checkpoint(path: str | Path) -> dict:
    """The dict of a crackal checkpoint (a file, or a run folder's best), loaded on the CPU."""
    path = resolve_checkpoint(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise CrackalError(f"cannot read checkpoint {path} ({exc}); the file is damaged or not a crackal checkpoint") from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CrackalError(f"{path} is not a crackal checkpoint (no model/config); use create_model(weights=...) for bare weights")
    return state


def checkpoint_task(state: dict) -> str:
    """What a checkpoint holds: ``detection``, ``classification`` (a patch classifier: its config has
    ``widths`` and no ``arch``) or ``segmentation``."""
    task = state.get("task")
    if task in ("detection", "classification"):
        return task
    config = state.get("config", {})
    return "classification" if "widths" in config and "arch" not in config else "segmentation"


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild a trained model from a checkpoint (or run folder); returns it in eval mode and the checkpoint dict."""
    state = read_checkpoint(path)
    task = checkpoint_task(state)
    if task == "detection":
        raise CrackalError(f"{path} holds a detector; use 'crackal detect ...', or pass it as --two-stage to 'crackal predict'")
    if task == "classification":
        raise CrackalError(f"{path} holds a patch classifier; use 'crackal classify ...'")
    config = TrainConfig.from_dict(state["config"])
    model = create_model(**config.model_kwargs())
    model.load_state_dict(state["model"])
    model.to(device).eval()
    if torch.device(device).type == "cpu":
        model.to(memory_format=torch.channels_last)
    return model, state


def load_detector(path: str | Path, device: str | torch.device = "cpu"):
    """Rebuild a trained detector from a checkpoint (or run folder); eval mode, and the checkpoint dict."""
    state = read_checkpoint(path)
    if state.get("task") != "detection":
        raise CrackalError(f"{path} holds a segmentation model; pass a run folder made by 'crackal detect train'")
    config = DetectionConfig.from_dict(state["config"])
    model = create_detector(**config.model_kwargs())
    model.load_state_dict(state["model"])
    return model.to(device).eval(), state
