"""Training, evaluating and running a patch classifier (``crackal classify train|evaluate|predict``).

A run folder holds ``config.json``, ``split.json``, ``metrics.json`` (loss and validation
scores per epoch), ``checkpoints/best.pt`` (best validation accuracy) and
``evaluation_test.json``.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from torch import nn

from crackal.classify.data import find_patches, load_patches
from crackal.classify.model import ClassifyConfig, load_classifier
from crackal.classify.sliding import heat_overlay, sliding_window
from crackal.data.io import list_images, read_image, write_png
from crackal.data.splits import load_split, make_split, save_split
from crackal.data.transforms import to_tensor
from crackal.errors import CrackalError, choose
from crackal.metrics.classification import classification_scores
from crackal.options import ENGINES, Engine
from crackal.progress import Progress
from crackal.runs.checkpoint import atomic_save, atomic_write_json, resolve_checkpoint


def _augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random flips and 90-degree rotations (one draw per batch) and a brightness jitter per patch."""
    k, flip = torch.randint(0, 4, (2,), generator=generator).tolist()
    batch = torch.rot90(batch, k, (-2, -1))
    batch = batch.flip(-1) if flip % 2 else batch
    return batch + 0.2 * (torch.rand(len(batch), 1, 1, 1, generator=generator) - 0.5)


@torch.inference_mode()
def predict_patches(model: nn.Module, patches: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities ``(N, K)`` of ``(N, s, s, 3) uint8`` patches."""
    model.eval()
    out = [model(torch.stack([to_tensor(p) for p in patches[i : i + batch_size]])).softmax(1) for i in range(0, len(patches), batch_size)]
    return torch.cat(out).numpy()


def _names(items: list[tuple[Path, int]], root: Path) -> list[str]:
    return [str(path.relative_to(root)) if path.is_relative_to(root) else str(path) for path, _ in items]


def train_classifier(data: str | Path, out: str | Path, *, val: float = 0.1, test: float = 0.2,
                     progress=None, **options) -> dict:
    """Train on a patch folder (seeded split, saved); returns the test scores."""
    from crackal.training.fit import WarmupCosine, seed_everything

    data, out = Path(data), Path(out)
    items, class_names = find_patches(data)
    config = ClassifyConfig(class_names=class_names, **options)
    if config.threads:
        torch.set_num_threads(config.threads)
    names = _names(items, data)
    split = make_split(names, val, test, config.seed)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    save_split(split, out / "split.json")
    (out / "config.json").write_text(json.dumps({**asdict(config), "data": str(data.resolve())}, indent=1))
    index = {n: i for i, n in enumerate(names)}
    sets = {}
    for part in ("train", "val", "test"):
        chosen = [index[n] for n in split[part]]
        sets[part] = (load_patches([items[i][0] for i in chosen], config.size), np.array([items[i][1] for i in chosen], np.int64))
    seed_everything(config.seed)
    model = config.build()
    x_train, y_train = torch.stack([to_tensor(p) for p in sets["train"][0]]), torch.from_numpy(sets["train"][1])
    steps_per_epoch = max(1, len(x_train) // config.batch_size)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(steps_per_epoch, steps_per_epoch * config.epochs))
    generator = torch.Generator().manual_seed(config.seed)
    history, best, started = [], -1.0, time.perf_counter()
    for epoch in range(config.epochs):
        model.train()
        order, losses = torch.randperm(len(x_train), generator=generator), []
        for step in range(steps_per_epoch):
            pick = order[step * config.batch_size : (step + 1) * config.batch_size]
            loss = nn.functional.cross_entropy(model(_augment(x_train[pick], generator)), y_train[pick])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
        record = {"epoch": epoch + 1, "train_loss": round(float(np.mean(losses)), 4), "seconds": round(time.perf_counter() - started, 1)}
        if len(sets["val"][1]):
            scores = classification_scores(sets["val"][1], predict_patches(model, sets["val"][0]), class_names)
            record.update(val_accuracy=scores["accuracy"], val_f1=scores["f1"])
        history.append(record)
        if record.get("val_accuracy", epoch) >= best:  # without validation: the last epoch
            best = record.get("val_accuracy", epoch)
            atomic_save({"model": model.state_dict(), "config": asdict(config), "epoch": epoch + 1, "task": "classification"},
                        out / "checkpoints" / "best.pt")
        atomic_write_json({"history": history}, out / "metrics.json")
        if progress:
            progress(f"epoch {epoch + 1}/{config.epochs}: " + ", ".join(f"{k} {v}" for k, v in record.items() if k != "epoch"))
    model, _ = load_classifier(out)
    result = classification_scores(sets["test"][1], predict_patches(model, sets["test"][0]), class_names) if len(sets["test"][1]) else {}
    result.update(split="test", checkpoint=str(out / "checkpoints" / "best.pt"))
    atomic_write_json(result, out / "evaluation_test.json")
    return result


def evaluate_classifier(run: str | Path, data: str | Path | None = None, split: str = "test", out: str | Path | None = None) -> dict:
    """Scores on the run's own split (default test), or on every patch of another folder."""
    model, config = load_classifier(run)
    run_dir = resolve_checkpoint(run).parent.parent
    if data is None:
        saved = json.loads((run_dir / "config.json").read_text())
        root = Path(saved["data"])
        items, _ = find_patches(root)
        wanted = set(load_split(run_dir / "split.json").get(split, []))
        if not wanted:
            raise CrackalError(f"the run's {split!r} split is empty; choose --split train, val or test")
        items = [item for item, name in zip(items, _names(items, root)) if name in wanted]
    else:
        items, names = find_patches(data)
        if len(names) != len(config.class_names):
            raise CrackalError(f"{data} has {len(names)} classes but the model was trained on {len(config.class_names)}")
        split = "all"
    labels = np.array([label for _, label in items])
    result = classification_scores(labels, predict_patches(model, load_patches([p for p, _ in items], config.size)), config.class_names)
    result["split"] = split
    out = Path(out) if out else run_dir / f"evaluation_{split}.json"
    atomic_write_json(result, out)
    result["saved_to"] = str(out)
    return result


def classifier_on(run: str | Path, engine: Engine = "torch", threads: int | None = None):
    """The run's classifier on ``engine`` and its config: the PyTorch model, or for ``onnxruntime``
    an ``OnnxClassifier`` of ``RUN/onnx`` (exported first when missing; ``run`` may be that folder)."""
    choose(ENGINES, engine, "engine")
    if engine == "torch":
        return load_classifier(run)
    from crackal.classify.onnx import OnnxClassifier, classifier_onnx_folder

    runtime = OnnxClassifier(classifier_onnx_folder(run), threads)
    return runtime, ClassifyConfig.from_dict(runtime.meta["config"])


def sliding_writer(run: str | Path, engine: Engine, out: str | Path, window: int, stride: int, batch_size: int,
                   threshold: float, *, threads: int | None = None, device: str = "cpu"):
    """The per-image job of ``predict_sliding`` (here, or once per Ray actor): image path -> its
    heat map, overlay and window CSV written into ``out``; returns its record."""
    model, config = classifier_on(run, engine, threads)
    if isinstance(model, nn.Module):
        model = model.to(device)
    return _sliding_writer(model, config, Path(out), window, stride, batch_size, threshold)


def _sliding_writer(model, config: ClassifyConfig, out: Path, window: int, stride: int, batch_size: int, threshold: float):
    def run(path: Path) -> dict:
        image = read_image(path)
        started = time.perf_counter()
        result = sliding_window(model, image, window, stride, batch_size, config.size)
        seconds = time.perf_counter() - started
        defect = 1 - result["heat"][0]
        write_png(out / "heatmaps" / f"{path.stem}.png", (255 * defect).round().astype(np.uint8))
        write_png(out / "overlays" / f"{path.stem}.png", heat_overlay(image, defect))
        (out / "windows").mkdir(parents=True, exist_ok=True)
        with (out / "windows" / f"{path.stem}.csv").open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["top", "left", "size", *config.class_names])
            for r, top in enumerate(result["tops"]):
                for c, left in enumerate(result["lefts"]):
                    writer.writerow([top, left, window, *(round(float(v), 4) for v in result["grid"][:, r, c])])
        grid_defect = 1 - result["grid"][0]
        return {"image": path.name, "height": image.shape[0], "width": image.shape[1], "windows": int(grid_defect.size),
                "seconds": round(seconds, 3), "defect_window_share": round(float((grid_defect >= threshold).mean()), 4)}

    return run


def predict_sliding(run: str | Path, inputs: str | Path, out: str | Path, *, window: int | None = None,
                    stride: int | None = None, batch_size: int = 64, threshold: float = 0.5,
                    engine: Engine = "torch", threads: int | None = None, ray: str | None = None,
                    ray_actors: int | None = None, progress: bool | Progress = False) -> list[dict]:
    """Sliding-window maps for an image or a folder: ``heatmaps/<name>.png`` (defect probability
    x 255), ``overlays/<name>.png``, ``windows/<name>.csv`` (each window's probabilities) and
    ``predictions.json`` (seconds per image, share of windows over ``threshold``). ``engine``
    ``onnxruntime`` runs the run's ONNX export with ``threads`` threads (see ``classifier_on``).
    With ``ray`` (``auto``, an address, or ``local``) the images are classified and their files
    written by ``ray_actors`` classifier replicas on Ray (``crackal.scale.jobs.map_paths_ray``),
    ``predictions.json`` here: the same files."""
    model, config = classifier_on(run, engine, threads)  # on Ray: options checked, ONNX export written
    inputs, out = Path(inputs), Path(out)
    files = [inputs] if inputs.is_file() else list_images(inputs)
    if not files:
        raise CrackalError(f"no images (.jpg/.png/.tif/.bmp) in {inputs}")
    window = window or config.size
    stride = stride or max(1, window // 2)
    if ray is None:
        work = _sliding_writer(model, config, out, window, stride, batch_size, threshold)
        records = [work(path) for path in Progress.of(progress).bar(files, desc="classifying windows", unit="images")]
    else:
        from crackal.scale.jobs import map_paths_ray

        args = (str(Path(run).resolve()), engine, str(out.resolve()), window, stride, batch_size, threshold)
        records = map_paths_ray(sliding_writer, args, files, address=ray, actors=ray_actors, progress=progress,
                                desc="classifying windows on Ray")
    atomic_write_json({"window": window, "stride": stride, "threshold": threshold, "engine": engine, "images": records},
                      out / "predictions.json")
    return records
