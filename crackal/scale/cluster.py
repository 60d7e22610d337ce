"""Connecting to Ray and sizing the actor pool."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from crackal.errors import CrackalError

LOCAL = "local"  # --ray local: a Ray started inside this process, on this machine
READ_SHARE = 0.2  # share of the cluster's CPUs left to Ray's read and bookkeeping tasks


def ray_module():
    """``import ray``, or an error that says how to install it."""
    try:
        import ray
    except ImportError:
        raise CrackalError("--ray needs Ray: pip install 'crackal[ray]'") from None
    return ray


def connect(address: str | None):
    """Ray, connected: to the cluster at ``address`` (``auto``: the one ``ray start --head`` started
    on this machine; ``ray://host:10001`` or ``host:6379``), or to a local Ray started here for
    ``local`` / ``None``. A Ray already initialised in this process is used as it is."""
    ray = ray_module()
    if ray.is_initialized():
        return ray
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if address in (None, "", LOCAL):
        # the local workers import this crackal, even from a source checkout
        source = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(p for p in (source, os.environ.get("PYTHONPATH", "")) if p)
        ray.init(include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": path}})
    else:
        try:
            ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise CrackalError(f"cannot connect to Ray at {address!r} ({exc}); start one with 'ray start --head' "
                               "or use --ray local") from None
    return ray


@dataclass(frozen=True)
class ActorPlan:
    """How many model actors run, and what each asks Ray for."""

    actors: int
    num_cpus: float
    num_gpus: float
    threads: int  # torch / ONNX Runtime threads inside an actor


def plan_actors(cpus: float, gpus: float, actors: int | None = None) -> ActorPlan:
    """One actor per GPU when the cluster has GPUs, else one per CPU (or ``actors``). CPU actors
    ask for a fraction of a CPU each, so that together they leave ``READ_SHARE`` of the CPUs to
    Ray's read tasks: a pool that takes every CPU starves them and the job hangs.

    >>> plan_actors(2, 0, 2)
    ActorPlan(actors=2, num_cpus=0.8, num_gpus=0, threads=1)
    >>> plan_actors(64, 4)
    ActorPlan(actors=4, num_cpus=1, num_gpus=1, threads=1)
    """
    if actors is not None and actors < 1:
        raise CrackalError(f"--ray-actors must be at least 1, got {actors}")
    if gpus >= 1:
        count = actors or int(gpus)
        return ActorPlan(count, 1, 1, 1)
    count = actors or max(1, int(cpus))
    share = round(cpus * (1 - READ_SHARE) / count, 3)
    return ActorPlan(count, share, 0, max(1, int(cpus) // count))


def cluster_plan(ray, actors: int | None = None) -> ActorPlan:
    """``plan_actors`` for the resources of the connected cluster."""
    resources = ray.cluster_resources()
    return plan_actors(resources.get("CPU", 1), resources.get("GPU", 0), actors)


def compute(ray, plan: ActorPlan):
    """The Ray Data actor-pool strategy of a plan."""
    return ray.data.ActorPoolStrategy(size=plan.actors)
