"""Run folders: what ``crackal train`` / ``crackal detect train`` leave behind, and how the
other commands find it again (``config.json``, ``split.json``, ``data.json``, ``checkpoints/``)."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

from crackal.errors import CrackalError
from crackal.runs.checkpoint import atomic_write_json


def run_dir_of(checkpoint: str | Path) -> Path:
    """The run folder of a checkpoint file (``RUN/checkpoints/best.pt`` -> ``RUN``)."""
    checkpoint = Path(checkpoint)
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent


def check_run_folder(out: Path, resume: bool, command: str) -> None:
    """A new run needs a folder without a run in it; ``resume`` needs one with a run."""
    exists = (out / "config.json").is_file()
    if resume and not exists:
        raise CrackalError(f"nothing to resume in {out}: no config.json; start a run with '{command}'")
    if not resume and exists:
        raise CrackalError(f"{out} already holds a run; resume it (resume=True, --resume) or choose another output folder")


def check_resume_matches(out: Path, config, options: dict, data: str | Path | None, saved_root: str) -> None:
    """A resumed run goes on as it was saved: new data or options that differ from the saved
    ones are refused (values equal to the defaults are what a command line passes anyway)."""
    if data is not None and Path(data).resolve() != Path(saved_root).resolve():
        raise CrackalError(f"{out} was trained on {saved_root}, not {data}; --resume continues a run as it was: "
                           "start a new run (another output folder) for other data")
    defaults = type(config)()
    declared = {f.name: f.default for f in fields(config)}  # "auto" before a config resolves it
    changed = [k for k, v in options.items()
               if hasattr(config, k) and v != getattr(config, k) and v not in (getattr(defaults, k), declared.get(k))]
    if changed:
        shown = ", ".join(f"{k}={options[k]!r} (saved {getattr(config, k)!r})" for k in changed)
        raise CrackalError(f"--resume continues {out} with its saved options; these differ: {shown}. "
                           "Start a new run (another output folder) to change them")


def _absolute(path: str | Path | None) -> str | None:
    return str(Path(path).resolve()) if path else None


def save_run_data(out: Path, root: str | Path, **paths_and_options) -> None:
    """``data.json``: where the run's dataset lives (paths made absolute) and how it was read."""
    entries = {key: _absolute(value) if key in ("masks", "boxes") else value for key, value in paths_and_options.items()}
    atomic_write_json({"root": _absolute(root), **entries}, out / "data.json")


def load_run_data(run_dir: Path) -> dict:
    """The run's ``data.json`` (see ``save_run_data``)."""
    path = run_dir / "data.json"
    if not path.is_file():
        raise CrackalError(f"{run_dir} is not a run folder with data.json; pass the dataset to use")
    return json.loads(path.read_text())
