"""Several change-detection AL runs (strategies x seeds) on one pool and test set, resumable,
with the all-tiles reference and a report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from crackal.change.al import ChangeALConfig, ModelCache, parse_run, reference_scores, run_change_al
from crackal.change.report import write_change_report
from crackal.data.bitemporal import TileSet
from crackal.errors import CrackalError, check_options
from crackal.runs.checkpoint import atomic_write_json


def run_configs(runs: list[str], seeds: int, **options) -> list[ChangeALConfig]:
    """The config of each run spec, checked (with the seed count) before any work."""
    if not runs:
        raise CrackalError("give at least one --strategy (e.g. variance:ensemble, entropy:mc_batchnorm, random)")
    check_options([(seeds >= 1, "seeds", f"must be at least 1, got {seeds}")])
    return [ChangeALConfig(**{**options, **parse_run(spec)}) for spec in runs]


def simulate_change(pool: TileSet, test: TileSet, out: str | Path, runs: list[str], seeds: int = 3,
                    reference: bool = True, progress=None, **options) -> Path:
    """Every run (``"variance:ensemble"``, ``"entropy:mc_batchnorm"``, ``"random"`` ...) for
    every seed; finished rounds are kept, so calling it again continues. Returns the report."""
    out = Path(out)
    configs = run_configs(runs, seeds, **options)
    cache = ModelCache(out / "models")
    states: dict[str, list[dict]] = {}
    references = []
    for seed in range(seeds):
        for config in configs:
            config = ChangeALConfig(**{**config.to_dict(), "seed": seed})
            states.setdefault(config.name, []).append(
                run_change_al(pool, test, config, out / config.name / f"seed{seed}", cache, progress))
        if reference:
            path = out / f"reference_seed{seed}.json"
            if not path.is_file():
                atomic_write_json(reference_scores(pool, test, configs[0].train, seed, cache), path)
            references.append(json.loads(path.read_text()))
            if progress:
                progress(f"reference seed {seed}: AUC {references[-1]['auc']:.4f} on {references[-1]['tiles']} tiles")
    ref = float(np.mean([r["auc"] for r in references])) if references else None
    return write_change_report(states, out, ref)
