"""Simulated active learning on a fully labelled dataset: the ground truth plays the labeller.

For every seed, each strategy starts from the same initial images (and so the same round-1
model, trained once) and labels ``query_size`` images per round; a model trained on the whole
pool gives the reference F1. ``crack_free_share`` mixes the pool (images or tiles) to that
share of crack-free ones, as on a real survey; the report gives the pool's share either way.
The ground truth labels each image in a simulated time (``crackal.acquisition.cost.
SIMULATED_COST``, recorded as the label's effort), so the report also gives F1 against
labelling hours (``crackal.active.time_curves``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from crackal.active.config import ALConfig
from crackal.active.loop import run_loop
from crackal.active.project import create_project
from crackal.active.report import project_history, write_report
from crackal.active.store import open_project
from crackal.data.dataset import SegmentationDataset
from crackal.data.io import IGNORE_INDEX, read_raw_mask, to_class_mask
from crackal.data.layout import Pair
from crackal.data.splits import load_split, make_split
from crackal.data.tiles import write_tiles
from crackal.errors import CrackalError, OptionError, check_options
from crackal.progress import Progress
from crackal.runs.checkpoint import load_model
from crackal.runs.config import TrainConfig
from crackal.training.evaluation import evaluate_model, headline
from crackal.training.trainer import train


def _split_pool(pairs: list[Pair], heldout: float, split_file: str | Path | None, seed: int) -> tuple[list[Pair], list[Pair]]:
    by_name = {p.name: p for p in pairs}
    if split_file:
        split = load_split(split_file)
        held, pool = split["test"], split["train"] + split.get("val", [])
    else:
        split = make_split(sorted(by_name), val=0, test=heldout, seed=seed)
        held, pool = split["test"], split["train"]
    return [by_name[n] for n in pool], [by_name[n] for n in held]


def is_crack_free(pair: Pair, num_classes: int) -> bool:
    """Whether a pair's mask holds no defect pixel."""
    mask = to_class_mask(read_raw_mask(pair.mask), num_classes, pair.mask)
    return not np.any((mask > 0) & (mask != IGNORE_INDEX))


def mix_pool(pool: list[Pair], num_classes: int, share: float | None = None, seed: int = 0) -> tuple[list[Pair], float]:
    """The pool with ``share`` of it crack-free (as many images kept as that allows, a seeded
    choice of the surplus dropped; None keeps the pool), and its crack-free share."""
    free = [is_crack_free(p, num_classes) for p in pool]
    if share is None:
        return pool, float(np.mean(free)) if pool else 0.0
    if not 0 <= share < 1:
        raise OptionError("crack_free_share", f"is a share in [0, 1), got {share}")
    crack_free = [i for i, f in enumerate(free) if f]
    cracked = [i for i, f in enumerate(free) if not f]
    wanted_free = round(share * len(cracked) / (1 - share))
    if wanted_free > len(crack_free):  # not enough crack-free images: drop cracked ones instead
        wanted_free, wanted_cracked = len(crack_free), round(len(crack_free) * (1 - share) / share)
    else:
        wanted_cracked = len(cracked)
    rng = np.random.default_rng(seed)
    kept = set(rng.choice(crack_free, wanted_free, replace=False).tolist()) if wanted_free else set()
    kept |= set(rng.choice(cracked, wanted_cracked, replace=False).tolist()) if wanted_cracked else set()
    mixed = [p for i, p in enumerate(pool) if i in kept]
    return mixed, wanted_free / max(1, len(mixed))


def reference_f1(pool: list[Pair], heldout: list[Pair], config: ALConfig, out: Path, progress: bool | Progress = False) -> float:
    """Held-out strict F1 of a model trained on the whole pool with the loop's training recipe."""
    done = out / "metrics_reference.json"
    if done.is_file():
        return json.loads(done.read_text())["f1"]
    num_classes = len(config.class_names)
    tcfg = config.segmentation_config(0, labelled=len(pool))  # round_steps: the steps for the whole pool (no validation slice)
    result = train(SegmentationDataset(pool, num_classes), None, tcfg, out / "reference", resume=True,
                   progress=Progress.of(progress).brief())
    model, _ = load_model(result.best_checkpoint)
    scores, _ = evaluate_model(model, SegmentationDataset(heldout, num_classes), config.class_names, (0,), tcfg.tile_size)
    f1 = headline(scores)["f1"]
    done.write_text(json.dumps({"f1": f1, "pool": len(pool)}))
    return f1


RUN_VARIANTS: dict[str, dict[str, object]] = {"warm": {"warm_start": True}, "diverse": {"selection": "diverse"},
                                               "cost": {"cost_aware": True}}

# what may differ between runs that share round 1: the strategy and its variants' settings
ROUND_ONE_NEUTRAL = {"strategy", *(key for settings in RUN_VARIANTS.values() for key in settings)}


def _round_one(project: Path) -> tuple[bool, tuple[list[str], dict]] | None:
    """Whether the project's round 1 has finished training, and what its training depends on: the
    initial images and the settings less ``ROUND_ONE_NEUTRAL`` (None when there is no project)."""
    if not (project / "project.db").is_file():
        return None
    store, config = open_project(project)
    with store:
        trained = any(r["round"] == 1 and r["state"] != "training" for r in store.rounds())
        queued = [record.name for record, round_, _ in store.queue() if round_ == 0]
        names = sorted(queued + [r.name for r in store.labelled() if r.labelled_round == 0])
    settings = {k: v for k, v in config.to_dict().items() if k not in ROUND_ONE_NEUTRAL}
    return trained, (names, settings)


def share_first_round(source: Path, target: Path) -> bool:
    """Runs of one seed label the same initial images and train round 1 identically (same data,
    seed and settings; only the strategy differs): copy the source project's round-1 run, once
    it has finished training, instead of retraining it. The copy is renamed into place, so a
    kill leaves no half-copied run."""
    src, dst = source / "rounds" / "001", target / "rounds" / "001"
    if dst.exists():
        return False
    found, wanted = _round_one(source), _round_one(target)
    if found is None or wanted is None or not found[0] or found[1] != wanted[1]:
        return False
    partial = dst.with_name("001.copying")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(src, partial)
    os.replace(partial, dst)
    return True


def share_first_round_of_seed(out: Path, project: Path) -> bool:
    """``share_first_round`` from any other strategy's run of the same seed under ``out``
    (``out/STRATEGY/seedN``: from this process or another one)."""
    return any(share_first_round(source, project) for source in sorted(out.glob(f"*/{project.name}")) if source != project)


def run_options(name: str) -> dict:
    """The ``ALConfig`` options of a run named ``STRATEGY`` with variants added by ``+``:
    ``+warm`` (warm-started rounds), ``+diverse`` (``selection="diverse"``), ``+cost``
    (``cost_aware``: score per predicted labelling second), so that one simulation compares them.

    >>> run_options("bald+warm"), run_options("bald+warm+diverse")
    ({'strategy': 'bald', 'warm_start': True}, {'strategy': 'bald', 'warm_start': True, 'selection': 'diverse'})
    >>> run_options("bald+cost")
    {'strategy': 'bald', 'cost_aware': True}
    """
    strategy, *variants = name.split("+")
    unknown = [v for v in variants if v not in RUN_VARIANTS]
    if unknown:
        raise OptionError("strategy", f"takes a strategy name, with variants +warm (warm-started rounds), +diverse (diverse "
                          f"batches) or +cost (cost-aware: score per predicted labelling second) added; got {name!r}")
    return {"strategy": strategy, **{k: v for variant in variants for k, v in RUN_VARIANTS[variant].items()}}


def simulation_config(train: TrainConfig | dict | None = None, **options) -> ALConfig:
    """The settings every run of a simulation starts from (``options``: ``ALConfig`` fields,
    ``train``: the round's training options); plateau stopping is off, so runs get all their rounds."""
    train_options = train.to_dict() if isinstance(train, TrainConfig) else dict(train or {})
    return ALConfig(**{"simulation": True, "patience": None, **options, "train": train_options})


def simulation_pool(pairs: list[Pair], out: Path, base: ALConfig, heldout: float = 0.2, split_file: str | Path | None = None,
                    tile: int | None = None, crack_free_share: float | None = None) -> tuple[list[Pair], list[Pair], float]:
    """The pool (cut into tiles under ``out/pool_tiles`` and mixed to ``crack_free_share``), the
    held-out pairs and the pool's crack-free share."""
    pool, held = _split_pool(pairs, heldout, split_file, seed=0)
    if tile:
        pool = write_tiles(pool, Path(out) / "pool_tiles", tile, len(base.class_names))
    pool, free_share = mix_pool(pool, len(base.class_names), crack_free_share, seed=0)
    if len(pool) <= base.initial:
        raise CrackalError(f"the pool has {len(pool)} images, not more than initial {base.initial}; use a bigger dataset or tiles")
    return pool, held, free_share


def checked_simulation(strategies: list[str], seeds: int, rounds: int, first_seed: int,
                       train: TrainConfig | dict | None, options: dict) -> ALConfig:
    """A simulation's base config, once its strategies, counts and options are checked (before any work)."""
    if not strategies:
        raise CrackalError("give at least one strategy")
    check_options([(seeds >= 1, "seeds", f"must be at least 1, got {seeds}"), (rounds >= 1, "rounds", f"must be at least 1, got {rounds}"),
                   (0 <= first_seed < seeds, "first_seed", f"must be in [0, seeds), got {first_seed}")])
    base = simulation_config(train, **options)
    for strategy in strategies:
        ALConfig.from_dict({**base.to_dict(), **run_options(strategy)})  # bad names fail here
    return base


def simulate(
    pairs: list[Pair],
    out: str | Path,
    strategies: list[str],
    seeds: int = 3,
    rounds: int = 5,
    heldout: float = 0.2,
    split_file: str | Path | None = None,
    tile: int | None = None,
    reference: bool = True,
    progress: bool | Progress = False,
    on_round=None,
    train: TrainConfig | dict | None = None,
    crack_free_share: float | None = None,
    first_seed: int = 0,
    **options,
) -> Path:
    """Run every strategy for every seed (resuming finished work) and write the report.

    ``crack_free_share`` (e.g. 0.5) mixes the pool to that share of crack-free images (see
    ``mix_pool``; the held-out set is left as it is). ``first_seed`` runs only seeds
    ``first_seed .. seeds - 1`` (another process may run the others; the report covers these).

    A strategy named ``bald+warm`` runs BALD with warm-started rounds (``run_options``).
    ``options`` are ``ALConfig`` fields (``initial``, ``query_size``, ``method`` ...), ``train``
    the round's training options (``TrainConfig`` fields, e.g. ``{"epochs": 20}``; the class
    names belong there too). ``on_round`` is called with each ``RoundResult`` and with a line
    of text when a run stops.
    """
    out = Path(out)
    base = checked_simulation(strategies, seeds, rounds, first_seed, train, options)
    pool, held, free_share = simulation_pool(pairs, out, base, heldout, split_file, tile, crack_free_share)
    histories: dict[str, list[dict]] = {}
    for seed in range(first_seed, seeds):
        for strategy in strategies:
            project = out / strategy / f"seed{seed}"
            if not (project / "project.db").is_file():
                config = ALConfig.from_dict({**base.to_dict(), **run_options(strategy), "seed": seed})
                create_project(project, [(p.name, p.image, p.mask) for p in pool],
                               [(p.name, p.image, p.mask) for p in held], config).close()
            share_first_round_of_seed(out, project)
            reason = run_loop(project, rounds, progress=progress, on_round=on_round)
            histories.setdefault(strategy, []).append(project_history(project))
            if on_round:
                on_round(f"{strategy}, seed {seed}: {reason}")
    ref = reference_f1(pool, held, base, out, progress) if reference else None
    return write_report(histories, out, ref, title="Active-learning simulation",
                        pool_notes={"crack_free_share": round(free_share, 4), "mixed_to": crack_free_share})
