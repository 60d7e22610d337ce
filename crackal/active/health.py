"""A project's files checked against its database: damaged label files, and the leftovers of
writes that were cut short.

A label is written under a temporary name, flushed and renamed, then recorded (see
``crackal.active.labels.store_labels``), so a kill or a full disk never leaves a row without its
file; a file can still be damaged later (a disk error, a person editing ``labels/``).
``damaged_labels`` reads every current label and names those that cannot be read, with what to
do; ``clean_leftovers`` removes what an interrupted write left behind: uploads being checked
(``.uploads/``) and temporary label files (``labels/NAME.tmp.png``) that no row names. Files
under a final name that no row names are unfinished writes too: they are kept, ignored, and
written over by the image's next label.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from crackal.active.lock import project_lock
from crackal.active.store import ProjectStore
from crackal.errors import CrackalError

UPLOADS = ".uploads"


@dataclass(frozen=True)
class DamagedLabel:
    """A current label whose file is missing or cannot be read."""

    image_id: int
    image: str
    path: str  # relative to the project
    labelled_by: str | None
    round: int | None
    problem: str

    @property
    def advice(self) -> str:
        """What to do about it."""
        return (f"the next round stops on it: put the file back from a backup ('crackal al restore BACKUP NEW_FOLDER', "
                f"then copy NEW_FOLDER/{self.path}), or label {self.image} again and import it with "
                f"'crackal al import PROJECT FOLDER --overwrite' (the damaged file stays in the history)")

    def message(self) -> str:
        """One line for a log or a page."""
        who = f" (by {self.labelled_by}, round {self.round})" if self.labelled_by else ""
        return f"{self.path}, the label of {self.image}{who}, cannot be read: {self.problem}; {self.advice}"

    def to_dict(self) -> dict:
        """As JSON for the API."""
        return {"image_id": self.image_id, "image": self.image, "path": self.path, "labelled_by": self.labelled_by,
                "round": self.round, "problem": self.problem, "advice": self.advice}


def _problem(path: Path, class_names: list[str]) -> str | None:
    """Why a label file cannot be used, or None when it reads."""
    from crackal.data.boxes import read_voc
    from crackal.data.io import read_raw_mask, to_class_mask

    if not path.is_file():
        return "the file is missing"
    try:
        if path.suffix.lower() == ".xml":
            read_voc(path, class_names)
        else:
            to_class_mask(read_raw_mask(path), len(class_names), path)
    except CrackalError as exc:  # the cause only: the reader's advice (re-export, --skip-invalid) is not for a stored label
        return str(exc).replace(str(path), path.name).split("; ")[0]
    except Exception as exc:  # noqa: BLE001 - whatever a damaged file makes a reader raise
        return f"{type(exc).__name__}: {exc}"
    return None


def damaged_labels(store: ProjectStore, class_names: list[str]) -> list[DamagedLabel]:
    """Every current label (the latest of each image) whose file is missing or cannot be read."""
    found = []
    for record in store.images("label_path IS NOT NULL"):
        assert record.label_path is not None
        problem = _problem(record.label_path, class_names)
        if problem:
            found.append(DamagedLabel(record.id, record.name, str(record.label_path.relative_to(store.root)),
                                      record.labelled_by, record.labelled_round, problem))
    return found


def clean_leftovers(root: str | Path) -> int:
    """Remove what interrupted writes left (see the module docstring); returns how many files.
    Done under the project's write lock, so nothing a writer is about to record goes; when the
    project is busy, nothing is removed."""
    root = Path(root)
    try:
        with project_lock(root, "crackal: removing the leftovers of interrupted writes"):
            with ProjectStore(root) as store:
                named = {row[0] for row in store.conn.execute("SELECT path FROM labels")}
            leftovers = [p for p in (root / UPLOADS).glob("*") if p.is_file()] if (root / UPLOADS).is_dir() else []
            leftovers += [p for p in (root / "labels").glob("*.tmp.*")
                          if p.is_file() and str(p.relative_to(root)) not in named]
            for path in leftovers:
                path.unlink(missing_ok=True)
            return len(leftovers)
    except CrackalError:  # a round or an import holds the lock: another time
        return 0
