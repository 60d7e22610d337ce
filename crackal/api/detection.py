"""Detection from Python: the jobs of ``crackal detect train / evaluate / predict``."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from crackal.data.boxes import ImageBoxes, write_coco, write_voc, write_yolo
from crackal.data.detection import BoxSample, DetectionDataset, open_box_dataset
from crackal.data.io import read_image, write_png
from crackal.data.splits import load_split, make_split, pick, save_split
from crackal.errors import CrackalError, choose
from crackal.inference.outputs import image_files
from crackal.inference.render import draw_boxes
from crackal.models.detect import detect_image
from crackal.options import ENGINES, Engine
from crackal.progress import Progress
from crackal.runs.checkpoint import atomic_write_json, load_detector, resolve_checkpoint, save_scores
from crackal.runs.config import DetectionConfig
from crackal.runs.folders import check_run_folder, load_run_data, run_dir_of, save_run_data
from crackal.training.detection import evaluate_detector, train_detector
from crackal.training.fit import TrainResult

BoxFormat = Literal["voc", "coco", "yolo"]
BOX_FORMATS: tuple[str, ...] = get_args(BoxFormat)


def _saved_dataset(run_dir: Path, config: DetectionConfig) -> list[BoxSample]:
    saved = load_run_data(run_dir)
    return open_box_dataset(saved["root"], config.class_names, saved["boxes"], saved["masks"], config.merge_distance,
                            config.min_pixels, saved["binarize"])[0]


def detect_train(
    data: str | Path,
    out: str | Path,
    *,
    boxes: str | Path | None = None,
    masks: str | Path | None = None,
    classes: str | list[str] | None = None,
    val: float = 0.1,
    test: float = 0.2,
    split_file: str | Path | None = None,
    binarize: bool = False,
    resume: bool = False,
    weights: str | Path | None = None,
    progress: bool | Progress = True,
    **options,
) -> TrainResult:
    """Train a RetinaNet into the run folder ``out``; ``options`` are ``DetectionConfig`` fields.

    Boxes come from ``boxes`` (COCO file or VOC/YOLO folder), the dataset's own box files, or
    its masks (see ``find_box_samples``). The split is seeded and saved, as for segmentation,
    so the same ``split.json`` gives the two models of a detect-then-segment pipeline the same
    test images. ``best_score`` of the result is the best validation mAP@0.5.
    """
    out = Path(out)
    check_run_folder(out, resume, "crackal detect train")
    if resume:
        config = DetectionConfig.from_dict(json.loads((out / "config.json").read_text()))
        samples, split = _saved_dataset(out, config), load_split(out / "split.json")
    else:
        probe = DetectionConfig(**options)  # bad options fail before the dataset is read
        samples, names = open_box_dataset(data, classes, boxes, masks, probe.merge_distance, probe.min_pixels, binarize)
        config = DetectionConfig(**{**options, "class_names": names})
        split = load_split(split_file) if split_file else make_split([s.name for s in samples], val, test, config.seed)
        out.mkdir(parents=True, exist_ok=True)
        save_split(split, out / "split.json")
        save_run_data(out, data, boxes=boxes, masks=masks, binarize=binarize)
    train_set = DetectionDataset(pick(samples, split["train"], "train"))
    val_set = DetectionDataset(pick(samples, split.get("val", []), "val"))
    if not any(len(s.boxes) for s in train_set.samples):
        raise CrackalError("no training image has a box; check the annotations (or min_pixels when boxes come from masks)")
    return train_detector(train_set, val_set, config, out, resume=resume, progress=progress, weights=weights)


def detect_evaluate(
    checkpoint: str | Path,
    data: str | Path | None = None,
    *,
    boxes: str | Path | None = None,
    masks: str | Path | None = None,
    split: str = "test",
    score_threshold: float | None = None,
    out: str | Path | None = None,
    progress: bool | Progress = True,
) -> dict:
    """mAP@0.5 and @0.5:0.95, per-class AP and, where masks exist, box precision, segmentation
    error and data reduction at the score threshold chosen on validation (or ``score_threshold``)."""
    ckpt = resolve_checkpoint(checkpoint)
    model, state = load_detector(ckpt)
    config = DetectionConfig.from_dict(state["config"])
    run_dir = run_dir_of(ckpt)
    if data is None:
        names = load_split(run_dir / "split.json").get(split) if (run_dir / "split.json").is_file() else None
        if not names:
            raise CrackalError(f"no {split!r} split in {run_dir}; pass the dataset to evaluate on, or the val split")
        samples, label = pick(_saved_dataset(run_dir, config), names, split), split
    else:
        samples, _ = open_box_dataset(data, config.class_names, boxes, masks, config.merge_distance, config.min_pixels)
        label = "all"
    threshold = state.get("threshold", 0.5) if score_threshold is None else score_threshold
    result = evaluate_detector(model, DetectionDataset(samples), config.class_names, threshold, progress=progress)
    result.update(checkpoint=str(ckpt), split=label)
    return save_scores(result, out or run_dir / f"detection_{label}.json")


def detector_on(checkpoint: str | Path, engine: Engine = "torch", threads: int | None = None,
                device: str = "cpu") -> tuple[Callable[[np.ndarray], ImageBoxes], list[str], float]:
    """The run's detector on ``engine`` (``uint8`` image -> ``ImageBoxes``), its class names and its
    score threshold: the PyTorch model (on ``device``), or for ``onnxruntime`` an ``OnnxDetector`` of
    ``RUN/onnx`` (exported first when missing; ``checkpoint`` may be that folder)."""
    choose(ENGINES, engine, "engine")
    if engine == "onnxruntime":
        from crackal.inference.onnx_detection import OnnxDetector, detector_onnx_folder

        runtime = OnnxDetector(detector_onnx_folder(checkpoint), threads)
        return runtime, runtime.meta["class_names"], runtime.meta["threshold"]
    model, state = load_detector(checkpoint, device)
    names = DetectionConfig.from_dict(state["config"]).class_names
    return partial(detect_image, model), names, state.get("threshold", 0.5)


def detection_writer(checkpoint: str | Path, engine: Engine, out: str | Path, threshold: float, box_format: BoxFormat, *,
                     threads: int | None = None, device: str = "cpu") -> Callable[[Path], dict]:
    """The per-image job of ``detect_predict`` (here, or once per Ray actor): image path -> its
    boxes over ``threshold`` written (VOC, YOLO) and drawn into ``out``; returns the image's
    size and boxes as a JSON-serialisable record."""
    detect, names, _ = detector_on(checkpoint, engine, threads, device)
    return _writer(detect, names, Path(out), threshold, box_format)


def _writer(detect: Callable[[np.ndarray], ImageBoxes], names: list[str], out: Path, threshold: float,
            box_format: BoxFormat) -> Callable[[Path], dict]:
    def run(path: Path) -> dict:
        image = read_image(path)
        found = detect(image).above(threshold)
        if box_format == "voc":
            write_voc(out / "boxes" / f"{path.stem}.xml", found, names, path.name, image.shape[:2])
        elif box_format == "yolo":
            write_yolo(out / "boxes" / f"{path.stem}.txt", found, image.shape[:2])
        write_png(out / "overlays" / f"{path.stem}.png", draw_boxes(image, found))
        return {"shape": list(image.shape[:2]), "boxes": found.boxes.tolist(), "labels": found.labels.tolist(),
                "scores": None if found.scores is None else found.scores.tolist()}

    return run


def _found_boxes(record: dict) -> ImageBoxes:
    """The boxes of a ``detection_writer`` record (float32, as detected: exact through JSON)."""
    return ImageBoxes(np.asarray(record["boxes"], np.float32).reshape(-1, 4), record["labels"], record["scores"])


def detect_predict(
    checkpoint: str | Path,
    inputs: str | Path,
    out: str | Path,
    *,
    score_threshold: float | None = None,
    box_format: BoxFormat = "voc",
    engine: Engine = "torch",
    threads: int | None = None,
    progress: bool | Progress = True,
    ray: str | None = None,
    ray_actors: int | None = None,
) -> dict[str, int]:
    """Boxes for an image or a folder: ``out/boxes/`` (VOC .xml, YOLO .txt) or ``out/boxes.json``
    (COCO), and ``out/overlays/`` with the boxes drawn. Returns the box count per image.
    ``engine="onnxruntime"`` runs the run's ONNX export with ``threads`` threads (see ``detector_on``).
    With ``ray`` (``auto``, an address, or ``local``) the images are detected and their files
    written by ``ray_actors`` detector replicas on Ray (``crackal.scale.jobs.map_paths_ray``), the
    COCO file and ``detections.json`` here: the same files."""
    choose(BOX_FORMATS, box_format, "box_format")
    files, out = image_files(inputs), Path(out)
    detect, names, threshold = detector_on(checkpoint, engine, threads)  # on Ray: options checked, ONNX export written
    threshold = threshold if score_threshold is None else score_threshold
    if ray is None:
        run = _writer(detect, names, out, threshold, box_format)
        records = [run(path) for path in Progress.of(progress).bar(files, desc="detecting", unit="images")]
    else:
        from crackal.scale.jobs import map_paths_ray

        args = (str(Path(checkpoint).resolve()), engine, str(out.resolve()), threshold, box_format)
        records = map_paths_ray(detection_writer, args, files, address=ray, actors=ray_actors, progress=progress,
                                desc="detecting on Ray")
    coco, counts = {}, {}
    for path, record in zip(files, records):
        found = _found_boxes(record)
        counts[path.name] = len(found)
        coco[path.name] = (found, tuple(record["shape"]))
    if box_format == "coco":
        write_coco(out / "boxes.json", coco, names)
    if box_format == "yolo":
        (out / "boxes" / "classes.txt").write_text("\n".join(names[1:]) + "\n")
    atomic_write_json({"score_threshold": threshold, "boxes": counts}, out / "detections.json")
    return counts
