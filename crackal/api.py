"""The Python API: the same jobs as the command line (``crackal synth/train/evaluate/predict``)."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from crackal.data.dataset import SegmentationDataset
from crackal.data.io import list_images, read_image, write_png
from crackal.data.layout import BINARY_CLASSES, Pair, find_pairs, read_class_colors, read_class_names, validate_pairs
from crackal.data.splits import load_split, make_split, save_split
from crackal.data.synth import SynthOptions, write_synthetic_dataset
from crackal.errors import CrackalError
from crackal.inference.measure import measure_defects
from crackal.inference.predict import predict_image
from crackal.inference.render import class_mask_from_probs, mask_png, overlay, probability_png
from crackal.metrics.segmentation import SegmentationEvaluator
from crackal.training.checkpoint import atomic_write_json, load_model, resolve_checkpoint, save_scores
from crackal.training.config import TrainConfig
from crackal.training.evaluation import evaluate_model
from crackal.training.trainer import TrainResult
from crackal.training.trainer import train as run_training
from crackal.api_detect import detect_evaluate, detect_predict, detect_train  # noqa: F401  (re-exported)


def synth(
    out: str | Path,
    count: int = 60,
    size: int | str = 256,
    seed: int = 0,
    surface: str = "mixed",
    extra_classes: bool = False,
    crack_free: float = 0.15,
) -> Path:
    """Write a synthetic dataset (``images/``, ``masks/``, ``classes.json``) to ``out``;
    ``crack_free`` is the share of images without any crack."""
    if surface not in ("asphalt", "concrete", "mixed"):
        raise CrackalError(f"unknown surface {surface!r}; choose asphalt, concrete or mixed")
    if not 0 <= crack_free <= 1:
        raise CrackalError(f"--crack-free is a share between 0 and 1, got {crack_free}")
    options = SynthOptions(surface=surface, extra_classes=extra_classes, crack_free_fraction=crack_free)
    return write_synthetic_dataset(out, count, size, seed, options)


def resolve_class_names(data: str | Path, classes: str | list[str] | None) -> list[str]:
    """Explicit ``classes`` (list or comma-separated) > ``data/classes.json`` > background, crack."""
    if isinstance(classes, str):
        classes = [c.strip() for c in classes.split(",") if c.strip()]
    if classes:
        if len(classes) < 2:
            raise CrackalError("--classes needs at least two names, background first (e.g. background,crack)")
        return list(classes)
    return read_class_names(data) or list(BINARY_CLASSES)


def open_dataset(
    data: str | Path,
    masks: str | Path | None = None,
    classes: str | list[str] | None = None,
    skip_invalid: bool = False,
    binarize: bool = False,
) -> tuple[list[Pair], list[str], list[str]]:
    """Find and validate every pair; returns (pairs, class names, problems skipped)."""
    names = resolve_class_names(data, classes)
    pairs = find_pairs(data, masks, allow_missing=skip_invalid)
    pairs, problems = validate_pairs(pairs, len(names), binarize, skip_invalid)
    return pairs, names, problems


def _subset(pairs: list[Pair], names: list[str], what: str) -> list[Pair]:
    by_name = {p.name: p for p in pairs}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise CrackalError(f"the {what} split names images that are not in the dataset: {', '.join(missing[:5])}")
    return [by_name[n] for n in names]


def train(
    data: str | Path,
    out: str | Path,
    *,
    masks: str | Path | None = None,
    classes: str | list[str] | None = None,
    val: float = 0.1,
    test: float = 0.2,
    split_file: str | Path | None = None,
    skip_invalid: bool = False,
    binarize: bool = False,
    resume: bool = False,
    weights: str | Path | None = None,
    encoder_weights: str | Path | None = None,
    progress: bool = True,
    **options,
) -> TrainResult:
    """Validate a dataset, split it (seeded, saved), train a model into the run folder ``out``.

    ``options`` are ``TrainConfig`` fields (``arch``, ``epochs``, ``lr`` ...). With ``resume``
    the run in ``out`` continues with its saved config, data and split. ``weights`` starts
    from a whole local model, ``encoder_weights`` from a local encoder state dict (e.g.
    ImageNet weights of a ResNet saved beforehand; smp architectures).
    """
    out = Path(out)
    if resume:
        if not (out / "config.json").is_file():
            raise CrackalError(f"nothing to resume in {out}: no config.json; start a run with 'crackal train'")
        saved = json.loads((out / "data.json").read_text())
        config = TrainConfig.from_dict(json.loads((out / "config.json").read_text()))
        data, masks, binarize, skip_invalid = saved["root"], saved["masks"], saved["binarize"], saved["skip_invalid"]
        split_file = out / "split.json"
        classes = config.class_names
    elif (out / "config.json").is_file():
        raise CrackalError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    pairs, names, problems = open_dataset(data, masks, classes, skip_invalid, binarize)
    if not resume:
        colors = read_class_colors(data)
        options.setdefault("class_colors", colors if colors and len(colors) == len(names) else None)
        config = TrainConfig(class_names=names, **options)
    split = load_split(split_file) if split_file else make_split([p.name for p in pairs], val, test, config.seed)
    out.mkdir(parents=True, exist_ok=True)
    save_split(split, out / "split.json")
    atomic_write_json(
        {"root": str(Path(data).resolve()), "masks": str(Path(masks).resolve()) if masks else None,
         "binarize": binarize, "skip_invalid": skip_invalid, "skipped": problems},
        out / "data.json",
    )
    train_set = SegmentationDataset(_subset(pairs, split["train"], "train"), config.num_classes, binarize=binarize)
    val_set = SegmentationDataset(_subset(pairs, split.get("val", []), "val"), config.num_classes, binarize=binarize)
    return run_training(train_set, val_set, config, out, resume=resume, progress=progress, weights=weights,
                        encoder_weights=encoder_weights)


def _run_dir_of(checkpoint: Path) -> Path:
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent


def evaluate(
    checkpoint: str | Path,
    data: str | Path | None = None,
    *,
    masks: str | Path | None = None,
    split: str = "test",
    tolerances: tuple[int, ...] = (0, 2, 5),
    tta: bool = False,
    binarize: bool = False,
    skip_invalid: bool = False,
    out: str | Path | None = None,
    progress: bool = True,
    two_stage: str | Path | None = None,
    box_margin: int = 16,
    box_threshold: float | None = None,
) -> dict:
    """Score a trained model; every figure in the result names its protocol.

    Without ``data`` the run's own dataset and its ``split`` (default ``test``) are used;
    with ``data`` every labelled image in that folder is scored. The ``fixed`` rows use the
    threshold chosen on the validation split during training, the ``ods``/``ois`` rows choose
    it on the evaluated images themselves. The result is saved as JSON (``out``, default
    ``RUN/evaluation_<split>.json``). With ``two_stage`` (a detector run) the model segments only
    inside the detected boxes (see ``predict``).
    """
    ckpt = resolve_checkpoint(checkpoint)
    model, state = load_model(ckpt)
    config = TrainConfig.from_dict(state["config"])
    run_dir = _run_dir_of(ckpt)
    if data is None:
        if not (run_dir / "data.json").is_file():
            raise CrackalError(f"{ckpt} has no run folder with data.json; pass the dataset to evaluate on")
        saved = json.loads((run_dir / "data.json").read_text())
        pairs, _, _ = open_dataset(saved["root"], saved["masks"], config.class_names, saved["skip_invalid"], saved["binarize"])
        names = load_split(run_dir / "split.json").get(split)
        if not names:
            raise CrackalError(f"the run's {split!r} split is empty; choose --split train, val or test")
        pairs = _subset(pairs, names, split)
        label = split
    else:
        pairs, _, _ = open_dataset(data, masks, config.class_names, skip_invalid, binarize)
        label = "all"
    dataset = SegmentationDataset(pairs, config.num_classes, binarize=binarize, cache=False)
    predict_fn = _two_stage_fn(model, config, two_stage, box_margin, box_threshold, tta) if two_stage else None
    started = time.perf_counter()
    result, _ = evaluate_model(model, dataset, config.class_names, tolerances, config.tile_size, tta,
                               fixed_threshold=state.get("threshold"), progress=progress, predict_fn=predict_fn)
    result.update(
        checkpoint=str(ckpt), split=label, tta=tta, two_stage=str(two_stage) if two_stage else None,
        seconds_per_image=round((time.perf_counter() - started) / len(dataset), 3),
    )
    return save_scores(result, out or run_dir / f"evaluation_{label}{'_two_stage' if two_stage else ''}.json")


def predict(
    checkpoint: str | Path,
    inputs: str | Path,
    out: str | Path,
    *,
    gsd: float | None = None,
    threshold: float | None = None,
    tile_size: int | None = None,
    overlap: int = 64,
    tta: bool = False,
    skip_invalid: bool = False,
    progress: bool = True,
    two_stage: str | Path | None = None,
    box_margin: int = 16,
    box_threshold: float | None = None,
) -> list[dict]:
    """Predict a folder or a single image; writes ``masks/``, ``probabilities/``, ``overlays/``
    and ``measurements.csv/.json`` (area in px, and m^2 when ``gsd`` in metres/pixel is given).

    The crack threshold defaults to the one chosen on the validation split during training.
    With ``two_stage`` (a run of ``crackal detect train``) the detector runs first and the model
    segments only its boxes, grown by ``box_margin`` px (boxes scoring below ``box_threshold``,
    default the detector's validation choice, are dropped); the rest is background.
    """
    inputs, out = Path(inputs), Path(out)
    files = [inputs] if inputs.is_file() else list_images(inputs)
    if not files:
        raise CrackalError(f"no images (.jpg/.png/.tif/.bmp) in {inputs}")
    if gsd is not None and gsd <= 0:
        raise CrackalError(f"--gsd is the ground sampling distance in metres per pixel and must be > 0, got {gsd}")
    model, state = load_model(checkpoint)
    config = TrainConfig.from_dict(state["config"])
    threshold = state.get("threshold", 0.5) if threshold is None else threshold
    if not 0 < threshold < 1:
        raise CrackalError(f"--threshold must be between 0 and 1, got {threshold}")
    tile_size = tile_size or config.tile_size
    two_stage_fn = _two_stage_fn(model, config, two_stage, box_margin, box_threshold, tta, tile_size) if two_stage else None
    records = []
    for path in tqdm(files, desc="predicting", disable=not progress, leave=False):
        try:
            image = read_image(path)
        except CrackalError:
            if skip_invalid:
                continue
            raise
        started = time.perf_counter()
        probs = two_stage_fn(image) if two_stage_fn else predict_image(model, image, tile_size=tile_size, overlap=overlap, tta=tta)
        seconds = time.perf_counter() - started
        class_mask = class_mask_from_probs(probs, threshold)
        write_png(out / "masks" / f"{path.stem}.png", mask_png(class_mask, config.num_classes))
        write_png(out / "probabilities" / f"{path.stem}.png", probability_png(probs))
        write_png(out / "overlays" / f"{path.stem}.png", overlay(image, class_mask, colors=config.class_colors))
        records.append({"image": path.name, "height": image.shape[0], "width": image.shape[1],
                        "seconds": round(seconds, 3), **_flatten(measure_defects(class_mask, config.class_names, gsd))})
    if not records:
        raise CrackalError(f"no readable image in {inputs}")
    _write_table(records, out / "measurements.csv")
    atomic_write_json({"threshold": threshold, "gsd_m_per_px": gsd, "images": records}, out / "measurements.json")
    return records


def _two_stage_fn(model, config: TrainConfig, detector_path, margin: int, box_threshold, tta: bool,
                  tile_size: int | None = None):
    """image -> probabilities by detect-then-segment with the detector run ``detector_path``."""
    from crackal.inference.two_stage import predict_two_stage
    from crackal.training.detection import load_detector

    detector, det_state = load_detector(detector_path)
    threshold = det_state.get("threshold", 0.5) if box_threshold is None else box_threshold
    if margin < 0:
        raise CrackalError(f"--box-margin must be >= 0 px, got {margin}")

    def run(image: np.ndarray) -> np.ndarray:
        return predict_two_stage(model, detector, image, config.num_classes, threshold, margin,
                                 tile_size or config.tile_size, tta)[0]

    return run


def _flatten(measurements: dict) -> dict:
    return {f"{name}_{key}": value for name, entry in measurements.items() for key, value in entry.items()}


def _write_table(records: list[dict], path: Path) -> None:
    columns = list(dict.fromkeys(k for r in records for k in r))
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(records)


def darkness_baseline(pairs: list[Pair], class_names: list[str], tolerances=(0, 2, 5)) -> dict:
    """Scores of a naive detector (crack probability = local darkness) for comparison."""
    from scipy import ndimage

    evaluator = SegmentationEvaluator(class_names, tolerances)
    for pair in pairs:
        image, mask = SegmentationDataset([pair], len(class_names), cache=False).load(0)
        grey = image.mean(axis=2)
        dark = np.clip((ndimage.median_filter(grey, 15) - grey) / 60.0, 0, 1)
        evaluator.update(np.stack([1 - dark, dark]), mask)
    return evaluator.compute()


# Patch classification and change detection live in their own packages; the same jobs from here.
from crackal.change.api import pool_and_test as change_tiles  # noqa: E402
from crackal.change.api import simulate as change_simulate  # noqa: E402
from crackal.change.api import synth_pairs as change_synth  # noqa: E402
from crackal.classify.workflow import evaluate_classifier as classify_evaluate  # noqa: E402
from crackal.classify.workflow import predict_sliding as classify_predict  # noqa: E402
from crackal.classify.workflow import train_classifier as classify_train  # noqa: E402
