"""Box datasets: images with VOC / YOLO / COCO boxes, or boxes derived from masks.

``find_box_samples(root)`` looks, in order, for ``--boxes`` (a COCO ``.json`` or a folder of
``.xml``/``.txt`` files), ``root/annotations.json``, ``root/annotations/``, ``root/det_voc/``,
``root/det_yolo/`` and finally the masks of a segmentation layout (boxes derived with
``boxes_from_mask``). When the dataset also has masks they are kept, for the paper's
pixel-based measures (box precision, segmentation error, data reduction).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from crackal.data.boxes import BOX_SUFFIXES, ImageBoxes, boxes_from_mask, fit_to_image, read_coco, read_voc, read_yolo
from crackal.data.io import image_size, list_images, read_image
from crackal.data.layout import Pair, check_unique_stems, find_pairs, load_pair, locate_folders, resolve_class_names
from crackal.errors import CrackalError

BOX_FOLDERS = ("annotations", "det_voc", "det_yolo")


@dataclass
class BoxSample:
    """One image, its boxes and, when the dataset has one, its mask."""

    image: Path
    boxes: ImageBoxes
    mask: Path | None = None

    @property
    def name(self) -> str:
        """The image's file stem."""
        return self.image.stem


def _image_folder(root: Path) -> Path:
    for name in ("images", "image", "JPEGImages"):
        if (root / name).is_dir():
            return root / name
    return root


def _read_box_source(source: Path, images: list[Path], class_names: list[str]) -> tuple[dict[str, ImageBoxes], dict[str, Path]]:
    """Boxes by image stem, and the file each came from."""
    if source.suffix.lower() == ".json":
        boxes, names = read_coco(source)
        if names[1:] != class_names[1:len(names)]:
            raise CrackalError(f"{source} names the classes {names[1:]}, the dataset {class_names[1:]}; pass matching --classes")
        return boxes, {stem: source for stem in boxes}
    if not source.is_dir():
        raise CrackalError(f"box annotations not found: {source}; give a COCO .json file or a folder of VOC .xml / YOLO .txt files")
    found: dict[str, ImageBoxes] = {}
    files: dict[str, Path] = {}
    for image in images:
        if (xml := source / f"{image.stem}{BOX_SUFFIXES['voc']}").is_file():
            found[image.stem], files[image.stem] = read_voc(xml, class_names), xml
        elif (txt := source / f"{image.stem}{BOX_SUFFIXES['yolo']}").is_file():
            found[image.stem], files[image.stem] = read_yolo(txt, image_size(image), len(class_names)), txt
    if not found:
        raise CrackalError(f"no .xml (VOC) or .txt (YOLO) file in {source} is named after an image; name them like the images")
    return found, files


def _mask_pairs(root: Path, masks: Path | None) -> dict[str, Pair] | None:
    try:
        locate_folders(root, masks)
    except CrackalError:
        return None
    return {p.name: p for p in find_pairs(root, masks, allow_missing=True)}


def find_box_samples(
    root: str | Path,
    class_names: list[str],
    boxes: str | Path | None = None,
    masks: str | Path | None = None,
    merge_distance: int = 8,
    min_pixels: int = 20,
    binarize: bool = False,
) -> list[BoxSample]:
    """Every image of a detection dataset with its boxes (see the module docstring).

    Images without a box file are kept with no boxes (crack-free images teach the detector
    what background looks like) when a box folder or COCO file is used. Boxes are checked
    against their image's size (read from its header): one sticking out is clipped, one
    entirely outside raises ``CrackalError``; two images with one name are refused.
    """
    root = Path(root)
    if not root.exists():
        raise CrackalError(f"dataset folder not found: {root}; check the path")
    source = Path(boxes) if boxes else next(
        (root / n for n in ("annotations.json", *BOX_FOLDERS) if (root / n).exists()), None)
    mask_pairs = _mask_pairs(root, Path(masks) if masks else None)
    if source is None:
        if mask_pairs is None:
            raise CrackalError(
                f"{root} has neither boxes (annotations.json, annotations/, det_voc/, det_yolo/) nor images/ + masks/; "
                "pass --boxes FILE_OR_DIR"
            )
        samples = []
        for _name, pair in sorted(mask_pairs.items()):
            mask = load_pair(pair, len(class_names), binarize)[1]
            samples.append(BoxSample(pair.image, boxes_from_mask(mask, len(class_names), merge_distance, min_pixels), pair.mask))
        return samples
    images = list_images(_image_folder(root))
    if not images:
        raise CrackalError(f"no images (.jpg/.png/.tif/.bmp) in {_image_folder(root)}; check the folder")
    check_unique_stems(images, _image_folder(root))
    found, files = _read_box_source(source, images, class_names)
    for image in images:  # boxes must lie on their image (checked on the header: nothing is decoded)
        if len(found.get(image.stem, ())):
            found[image.stem] = fit_to_image(found[image.stem], image_size(image), files[image.stem], image.name)
    mask_pairs = mask_pairs or {}
    return [BoxSample(image, found.get(image.stem, ImageBoxes()), mask_pairs[image.stem].mask if image.stem in mask_pairs else None)
            for image in images]


def to_target(boxes: ImageBoxes) -> dict[str, torch.Tensor]:
    """torchvision's detection target: ``boxes (N, 4) float32`` and ``labels (N,) int64``."""
    return {"boxes": torch.from_numpy(boxes.boxes.copy()), "labels": torch.from_numpy(boxes.labels.copy())}


class DetectionDataset(Dataset):
    """Samples ``{"image": (3, H, W) float32 in [0, 1], "target": {...}, "name": str}``.

    With ``augment`` the image and its boxes are flipped at random (horizontal and vertical),
    drawn from ``set_seed``'s seed and the index, so an epoch can be replayed exactly.
    """

    def __init__(self, samples: list[BoxSample], augment: bool = False) -> None:
        self.samples = list(samples)
        self.augment = augment
        self.seed = 0
        self._cache: dict[int, np.ndarray] = {}
        self._masks: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def set_seed(self, seed: int) -> None:
        """The seed of the random flips (with the index, it fixes each sample's flips)."""
        self.seed = seed

    def load(self, index: int) -> np.ndarray:
        """The sample's image, ``(H, W, 3) uint8`` (read once, then kept)."""
        if index not in self._cache:
            self._cache[index] = read_image(self.samples[index].image)
        return self._cache[index]

    def load_mask(self, index: int, num_classes: int) -> np.ndarray | None:
        """The sample's class mask (read once, then kept: validation reads it every epoch)."""
        sample = self.samples[index]
        if sample.mask is not None and index not in self._masks:
            self._masks[index] = load_pair(Pair(sample.image, sample.mask), num_classes)[1]
        return self._masks.get(index)

    def __getitem__(self, index: int) -> dict:
        image = self.load(index)
        boxes = self.samples[index].boxes.boxes.copy()
        height, width = image.shape[:2]
        if self.augment:
            flip_x, flip_y = np.random.default_rng((self.seed, index)).random(2) < 0.5
            if flip_x:
                image, boxes[:, [0, 2]] = image[:, ::-1], width - boxes[:, [2, 0]]
            if flip_y:
                image, boxes[:, [1, 3]] = image[::-1], height - boxes[:, [3, 1]]
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0
        target = to_target(ImageBoxes(boxes, self.samples[index].boxes.labels))
        return {"image": tensor, "target": target, "name": self.samples[index].name}


def collate_detection(batch: list[dict]) -> dict:
    """Lists, as torchvision's detectors take them (images may differ in size)."""
    return {key: [item[key] for item in batch] for key in batch[0]}


def open_box_dataset(data, classes=None, boxes=None, masks=None, merge_distance: int = 8, min_pixels: int = 20,
                     binarize: bool = False) -> tuple[list[BoxSample], list[str]]:
    """Every image of a detection dataset with its boxes, and the class names."""
    names = resolve_class_names(data, classes)
    return find_box_samples(data, names, boxes, masks, merge_distance, min_pixels, binarize), names
