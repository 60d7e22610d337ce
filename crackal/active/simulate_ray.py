"""``crackal simulate --ray``: a simulation's seeds as Ray tasks, so that a benchmark that takes
hours on one machine runs in parallel on a cluster.

The pattern of ``benchmarks/_al.py``'s ``run_simulation``: the driver prepares the pool once
(tiles and crack-free mixing) and saves it as a split file; one Ray task per seed runs every
strategy of that seed (strategies of one seed share the first round, so a seed is the unit of
work) and one task trains the whole-pool reference; the driver then calls ``simulate`` once more,
which finds every run finished and writes the report. The tasks read and write the projects
under ``out`` themselves: ``out`` and the dataset must be on a file system every node sees.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from crackal.data.layout import Pair
from crackal.errors import CrackalError
from crackal.progress import Progress
from crackal.runs.config import TrainConfig

POOL_SPLIT = "pool_split.json"  # the pool as the driver prepared it, shared with the tasks
SHARED = "a file system every Ray node sees at the same path (NFS, a mounted bucket)"


def _absolute(pair: Pair) -> Pair:
    return dataclasses.replace(pair, image=Path(pair.image).resolve(), mask=Path(pair.mask).resolve())


def _check_shared(out: Path, pairs: list[Pair]) -> None:
    """A ``CrackalError`` on a node that does not see the driver's files."""
    import socket

    missing = [p for p in (out / POOL_SPLIT, pairs[0].image) if not p.is_file()]
    if missing:
        raise CrackalError(f"Ray node {socket.gethostname()} cannot see {missing[0]}: --out and the dataset must be on "
                           f"{SHARED}")


def _run_seed(pairs: list[Pair], out: Path, strategies: list[str], seed: int, common: dict) -> list:
    """A Ray task: every strategy of one seed; its round results and stop lines."""
    from crackal.active.simulate import simulate

    _check_shared(out, pairs)
    results: list = []
    simulate(pairs, out, strategies, seeds=seed + 1, first_seed=seed, reference=False, progress=False,
             on_round=results.append, **common)
    return results


def _run_reference(pool: list[Pair], held: list[Pair], base_dict: dict, out: Path) -> float:
    """A Ray task: the whole-pool reference F1."""
    from crackal.active.config import ALConfig
    from crackal.active.simulate import reference_f1

    _check_shared(out, pool)
    return reference_f1(pool, held, ALConfig.from_dict(base_dict), out)


def _failure(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    return str(cause) if isinstance(cause, CrackalError) else f"{type(cause).__name__}: {cause}"


def simulate_on_ray(
    pairs: list[Pair],
    out: str | Path,
    strategies: list[str],
    *,
    seeds: int = 3,
    rounds: int = 5,
    ray: str | None = "local",
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
    """``crackal.active.simulate.simulate`` with each seed (all its strategies) and the reference
    as Ray tasks on the cluster at ``ray`` (``auto``, ``ray://host:10001``, ``local``: see
    ``crackal.scale.cluster.connect``); returns the report, which is the local run's.

    Each task asks Ray for one CPU (one GPU instead where the cluster has GPUs) and trains with
    one torch thread unless ``train`` sets ``threads``. ``on_round`` gets each seed's round
    results and stop lines on the driver when that seed's task finishes. Finished runs are kept:
    a second call resumes. A seed that fails leaves the others running; then the call raises
    a ``CrackalError`` naming the failed seeds.
    """
    from crackal.active.simulate import checked_simulation, simulate, simulation_pool
    from crackal.scale.cluster import connect

    train_options = train.to_dict() if isinstance(train, TrainConfig) else dict(train or {})
    train_options.setdefault("threads", 1)  # one CPU per task
    base = checked_simulation(strategies, seeds, rounds, first_seed, train_options, options)  # before Ray starts
    if not pairs:
        raise CrackalError("the dataset has no image pairs")
    report = Progress.of(progress)
    ray_ = connect(ray)
    gpus = ray_.cluster_resources().get("GPU", 0)
    device = str(getattr(base.train, "device", "auto"))
    if device.startswith("cuda") and gpus < 1:
        raise CrackalError(f"train device {device!r} on a Ray cluster without GPUs; use device auto or cpu")

    out = Path(out).resolve()  # the tasks run elsewhere: absolute paths only
    out.mkdir(parents=True, exist_ok=True)
    pairs = [_absolute(p) for p in pairs]
    pool, held, _ = simulation_pool(pairs, out, base, heldout, split_file, tile, crack_free_share)
    (out / POOL_SPLIT).write_text(json.dumps({"train": [p.name for p in pool], "val": [], "test": [p.name for p in held]}))
    common = {"rounds": rounds, "split_file": out / POOL_SPLIT, "train": train_options, **options}
    resources = {"num_cpus": 1, "num_gpus": 1} if gpus >= 1 else {"num_cpus": 1}
    # the pool is mixed already: the tasks take it as it is (mixing twice could round differently)
    seed_task = ray_.remote(**resources)(_run_seed)
    tasks = {seed_task.remote(pool + held, out, strategies, seed, {**common, "crack_free_share": None}): f"seed {seed}"
             for seed in range(first_seed, seeds)}
    if reference:
        tasks[ray_.remote(**resources)(_run_reference).remote(pool, held, base.to_dict(), out)] = "reference"
    report.line(f"simulation on Ray: {len(tasks)} tasks ({seeds - first_seed} seeds x {len(strategies)} strategies"
                f"{', the reference' if reference else ''}), results in {out}")
    failed, waiting = [], list(tasks)
    while waiting:
        done, waiting = ray_.wait(waiting, num_returns=1)
        name = tasks[done[0]]
        try:
            result = ray_.get(done[0])
        except Exception as exc:  # noqa: BLE001 - any task failure is reported with its seed
            failed.append(f"{name}: {_failure(exc)}")
            report.line(f"{name} failed on Ray: {_failure(exc)} ({len(waiting)} tasks still running)")
            continue
        if on_round and name != "reference":
            for item in result:
                on_round(item)
        report.line(f"{name} finished on Ray ({len(tasks) - len(waiting)} of {len(tasks)})")
    if failed:
        raise CrackalError(f"{len(failed)} of {len(tasks)} Ray tasks failed (finished runs are kept; run again to resume): "
                           + "; ".join(failed))
    # everything is done: this finds the runs finished and the reference stored, and writes the report
    return simulate(pool + held, out, strategies, seeds=seeds, first_seed=first_seed, reference=reference,
                    progress=False, crack_free_share=crack_free_share, **common)
