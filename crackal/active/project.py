"""Creating and opening an active-learning project: the pool, the held-out set, the first
images to label (random, or a coreset of encoder features)."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from crackal.acquisition.diversity import encoder_embeddings
from crackal.acquisition.select import kcenter_greedy, select_random
from crackal.active.config import ALConfig
from crackal.active.lock import project_lock
from crackal.active.store import ImageRecord, ProjectStore
from crackal.data.io import list_images, read_image
from crackal.data.layout import open_dataset, resolve_class_names
from crackal.data.splits import make_split
from crackal.errors import CrackalError
from crackal.models import create_model

Row = tuple[str, Path, "Path | None"]  # (name, image, ground-truth mask or label file, or None)


class LazyImages:
    """The images of some records, read one at a time when iterated (the pool can be large)."""

    def __init__(self, records: list[ImageRecord]) -> None:
        self.records = records

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        for record in self.records:
            yield read_image(record.path)


@dataclass
class ProjectImages:
    """What a new project holds: its pool, its held-out set and its class names."""

    pool: list[Row]
    heldout: list[Row]
    class_names: list[str]
    simulation: bool  # every pool image has a ground-truth mask: the ground truth labels


def find_project_images(images: str | Path, masks: str | Path | None = None, heldout_images: str | Path | None = None,
                        heldout_masks: str | Path | None = None, heldout: float = 0.2, classes=None,
                        seed: int = 0) -> ProjectImages:
    """The pool from ``images`` (with ground-truth ``masks``, or a dataset root with ``masks/``:
    a simulation), and the held-out set from its own folders or, in a simulation, a seeded
    share of the pool."""
    images = Path(images)
    simulation = masks is not None or (images / "masks").is_dir()
    if simulation:
        pairs, names, _ = open_dataset(images, masks, classes)
        pool: list[Row] = [(p.name, p.image, p.mask) for p in pairs]
    else:
        names = resolve_class_names(images, classes)
        pool = [(p.stem, p, None) for p in list_images(images)]
    if heldout_images is not None:
        held_pairs, _, _ = open_dataset(heldout_images, heldout_masks, names)
        held: list[Row] = [(p.name, p.image, p.mask) for p in held_pairs]
    elif simulation:
        split = make_split([name for name, _, _ in pool], val=0, test=heldout, seed=seed)
        test = set(split["test"])
        held, pool = [row for row in pool if row[0] in test], [row for row in pool if row[0] not in test]
    else:
        raise CrackalError("a labelling project (pool images without masks) needs a held-out set with masks to score each "
                           "round: give --heldout-images and --heldout-masks (heldout_images / heldout_masks), e.g. 20-50 "
                           "images like the pool's, labelled once by hand, not in the pool folder")
    return ProjectImages(pool, held, names, simulation)


def create_project(root: str | Path, pool: list[Row], heldout: list[Row], config: ALConfig) -> ProjectStore:
    """A new project with its pool ``(name, image, truth mask or None)`` and held-out set
    ``(name, image, mask)``, and the cold-start batch queued for labelling."""
    if not pool:
        raise CrackalError("the pool is empty: give a folder with at least one image")
    if not heldout:
        raise CrackalError("a held-out set with masks is needed to measure each round; give held-out images and masks")
    if config.simulation and any(truth is None for _, _, truth in pool):
        missing = next(name for name, _, truth in pool if truth is None)
        raise CrackalError(f"simulation needs a ground-truth mask for every pool image; {missing} has none")
    names = Counter(name for name, _, _ in pool + heldout)
    if twice := [n for n, count in names.items() if count > 1]:
        paths = [str(p) for n, p, _ in pool + heldout if n == twice[0]]
        raise CrackalError(f"{len(twice)} image name(s) appear twice in the pool and held-out set, e.g. {twice[0]!r}: "
                           f"{', '.join(paths)}; images are known by name, so rename or remove the extra copies (two 'crackal synth' sets: "
                           "make them with different --prefix)")
    root = Path(root)
    with project_lock(root, "crackal al init"):
        if (root / ProjectStore.DB_NAME).exists():
            raise CrackalError(f"{root} already holds a project; use another folder or 'crackal al status'")
        partial = ".project.db.partial"  # renamed into place when complete: a killed init leaves no half project
        for leftover in root.glob(partial + "*"):
            leftover.unlink()
        with ProjectStore(root, create=True, db_name=partial) as store:
            _register(store, pool, heldout, config)
        os.replace(root / partial, root / ProjectStore.DB_NAME)
    return ProjectStore(root)


def _register(store: ProjectStore, pool: list[Row], heldout: list[Row], config: ALConfig) -> None:
    """Settings, images and the first queue of a new project."""
    store.update_settings(config.to_dict())
    store.add_images([(n, p, "pool", t) for n, p, t in pool] + [(n, p, "heldout", m) for n, p, m in heldout])
    candidates = store.unlabelled()
    k = min(config.initial, len(candidates))
    if config.cold_start == "coreset":
        train = config.train  # a TrainConfig: ALConfig allows coreset for segmentation only
        model = create_model(**train.model_kwargs(), encoder_weights=train.encoder_weights)  # type: ignore[union-attr]
        chosen = kcenter_greedy(encoder_embeddings(model, LazyImages(candidates)), k, config.seed)
    else:
        chosen = select_random(len(candidates), k, config.seed)
    store.enqueue(0, [candidates[i].id for i in chosen], [None] * len(chosen))
